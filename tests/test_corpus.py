"""Specification of the MLGO corpus reader: files, flag rules, split, selection and bad input."""

import json
import os
import pickle
import tempfile

import gin
import pytest

from compiler_opt.rl import corpus
from tests import gin_test_base

# What clang-22 embeds as .llvmcmd for `clang-22 -Oz -c a.c` (abridged).
_CC1 = tuple(
    "-cc1 -triple x86_64-pc-linux-gnu -Oz -emit-obj -main-file-name a.c -mrelocation-model pic "
    "-pic-level 2 -fgnuc-version=4.2.1 -fskip-odr-check-in-gmf -vectorize-slp "
    "-fembed-bitcode=all -faddrsig".split()
)


def write_corpus(root, modules, **description):
    """Writes a corpus: `modules` maps NAME -> cc1 args (None: no .cmd file)."""
    os.makedirs(root, exist_ok=True)
    for name, args in modules.items():
        bc_path, cmd_path = corpus.module_files(str(root), name)
        os.makedirs(os.path.dirname(bc_path), exist_ok=True)
        with open(bc_path, "wb") as f:
            f.write(b"BC\xc0\xde" + name.encode())
        if args is not None:
            with open(cmd_path, "wb") as f:
                f.write("\0".join(args).encode() + b"\0")
    description = {"modules": list(modules), "has_thinlto": False, **description}
    with open(os.path.join(root, corpus.DESCRIPTION_FILE), "w") as f:
        json.dump(description, f)
    return str(root)


def load_one(tmp_path, args=_CC1, rules=None):
    root = write_corpus(tmp_path / "c", {"lib/a": args})
    return corpus.Corpus.load(root, rules=rules or corpus.FlagRules()).modules[0]


# Module specs and commands.


def test_module_spec_describes_the_module_files(tmp_path):
    spec = load_one(tmp_path)
    assert spec.name == "lib/a"
    assert spec.bc_path == str(tmp_path / "c" / "lib" / "a.bc")
    assert spec.size_bytes == os.path.getsize(spec.bc_path)
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_command_compiles_the_bitcode_with_the_cc1_args_to_the_object(tmp_path):
    spec = load_one(tmp_path)
    assert spec.command("clang-22", "/o/a.o", ["-mllvm", "-x=1"]) == [
        "clang-22",
        *spec.cc1_args,
        "-mllvm",
        "-x=1",
        "-x",
        "ir",
        spec.bc_path,
        "-o",
        "/o/a.o",
    ]


def test_cc1_args_keep_the_recorded_order_without_embed_bitcode(tmp_path):
    spec = load_one(tmp_path)
    assert spec.cc1_args == tuple(a for a in _CC1 if a != "-fembed-bitcode=all")


def test_every_embed_bitcode_flag_and_a_recorded_output_are_dropped(tmp_path):
    args = ("-cc1", "-fembed-bitcode=marker", "-fembed-bitcode", "-o", "old.o", "-Oz")
    assert load_one(tmp_path, args).cc1_args == ("-cc1", "-Oz")


# Flag rules.


def apply(rules, args=_CC1):
    return rules.apply(args, {"name": "m", "bc_path": "/c/m.bc", "module_base": "/c/m", "corpus_dir": "/c"})


def test_deleting_a_flag_without_value_keeps_the_flag_after_it():
    out = apply(corpus.FlagRules(delete=("-fskip-odr-check-in-gmf",)))
    assert "-fskip-odr-check-in-gmf" not in out
    assert "-vectorize-slp" in out


def test_deleting_a_separate_value_flag_removes_its_value():
    out = apply(corpus.FlagRules(delete=("-main-file-name", "-pic-level")))
    assert "a.c" not in out and "-main-file-name" not in out
    assert "2" not in out and "-mrelocation-model" in out and "pic" in out


def test_a_prefix_pattern_deletes_joined_and_separate_forms():
    args = ("-cc1", "-I", "/inc", "-I/other", "-Oz")
    assert apply(corpus.FlagRules(delete=("-I*",)), args) == ("-cc1", "-Oz")


def test_a_two_word_pattern_deletes_only_the_matching_values():
    args = ("-cc1", "-mllvm", "-inline-threshold=50", "-mllvm", "-vectorize-loops")
    rules = corpus.FlagRules(delete=("-mllvm -inline-threshold=*",))
    assert apply(rules, args) == ("-cc1", "-mllvm", "-vectorize-loops")


def test_a_value_that_looks_like_a_deleted_flag_is_kept():
    args = ("-cc1", "-main-file-name", "-Oz", "-Oz")
    assert apply(corpus.FlagRules(delete=("-Oz",)), args) == ("-cc1", "-main-file-name", "-Oz")


def test_replace_substitutes_a_joined_value_from_the_template():
    args = ("-cc1", "-fthinlto-index=old.bc", "-Oz")
    rules = corpus.FlagRules(replace={"-fthinlto-index=": "{module_base}.thinlto.bc"})
    assert apply(rules, args) == ("-cc1", "-fthinlto-index=/c/m.thinlto.bc", "-Oz")


def test_replace_substitutes_a_separate_value():
    rules = corpus.FlagRules(replace={"-main-file-name": "{name}.c"})
    out = apply(rules)
    assert out[out.index("-main-file-name") + 1] == "m.c"
    assert "a.c" not in out


def test_replace_appends_an_absent_flag():
    rules = corpus.FlagRules(replace={"-ferror-limit": "0"})
    assert apply(rules)[-2:] == ("-ferror-limit", "0")


def test_additional_flags_come_after_every_other_rule():
    rules = corpus.FlagRules(delete=("-Oz",), replace={"-O=": "x"}, additional=("-Oz", "-w"))
    assert apply(rules)[-3:] == ("-O=x", "-Oz", "-w")


def test_a_replace_rule_on_a_flag_without_value_is_rejected():
    with pytest.raises(corpus.CorpusError, match="separate_value_flags"):
        corpus.FlagRules(replace={"-vectorize-slp": "x"})


def test_a_replace_rule_with_an_unknown_placeholder_is_rejected():
    with pytest.raises(corpus.CorpusError, match=r"\{path\}"):
        corpus.FlagRules(replace={"-fthinlto-index=": "{path}"})


def test_an_extra_separate_value_flag_takes_its_value_along():
    args = ("-cc1", "-my-flag", "v", "-Oz")
    rules = corpus.FlagRules(delete=("-my-flag",), separate_value_flags=("-my-flag",))
    assert apply(rules, args) == ("-cc1", "-Oz")


class FlagRulesFromGinTest(gin_test_base.GinTestCase):
    def test_load_uses_the_gin_configured_rules(self):
        gin.parse_config("corpus.FlagRules.delete = ['-faddrsig']\ncorpus.FlagRules.additional = ['-w']")
        with tempfile.TemporaryDirectory() as root:
            write_corpus(root, {"a": _CC1})
            spec = corpus.Corpus.load(root).modules[0]
        self.assertNotIn("-faddrsig", spec.cc1_args)
        self.assertEqual(spec.cc1_args[-1], "-w")


# Global command override.


def test_a_global_command_override_replaces_every_cmd_file(tmp_path):
    root = write_corpus(tmp_path, {"a": None, "b": None}, global_command_override=["-cc1", "-Oz", "-faddrsig"])
    specs = corpus.Corpus.load(root, rules=corpus.FlagRules(delete=("-faddrsig",))).modules
    assert [s.cc1_args for s in specs] == [("-cc1", "-Oz")] * 2


def test_an_override_not_starting_with_cc1_is_rejected(tmp_path):
    root = write_corpus(tmp_path, {"a": None}, global_command_override=["<UNSPECIFIED>"])
    with pytest.raises(corpus.CorpusError, match="global_command_override.*-cc1"):
        corpus.Corpus.load(root)


# Split, selection, sampling.


def make_names(n):
    return {f"lib{i % 7}/mod{i}": _CC1 for i in range(n)}


def test_split_is_a_partition_fixed_by_module_names(tmp_path):
    full = corpus.Corpus.load(write_corpus(tmp_path / "full", make_names(200)))
    train, held_out = full.split(0.25)
    assert sorted(train.names + held_out.names) == sorted(full.names)
    assert not set(train.names) & set(held_out.names)
    again_train, again_held_out = corpus.Corpus.load(full.root).split(0.25)
    assert (again_train.names, again_held_out.names) == (train.names, held_out.names)


def test_a_module_stays_on_its_side_when_the_corpus_grows(tmp_path):
    small = corpus.Corpus.load(write_corpus(tmp_path / "small", make_names(50)))
    large = corpus.Corpus.load(write_corpus(tmp_path / "large", make_names(300)))
    small_held = set(small.split(0.3)[1].names)
    large_held = set(large.split(0.3)[1].names)
    assert small_held == large_held & set(small.names)


def test_split_sizes_follow_the_fraction(tmp_path):
    full = corpus.Corpus.load(write_corpus(tmp_path, make_names(1000)))
    assert 150 <= len(full.split(0.2)[1]) <= 250
    assert len(full.split(0.0)[1]) == 0
    assert len(full.split(1.0)[0]) == 0


def test_split_rejects_a_fraction_outside_0_1(tmp_path):
    full = corpus.Corpus.load(write_corpus(tmp_path, make_names(3)))
    with pytest.raises(ValueError):
        full.split(1.5)


def test_select_keeps_corpus_order_and_rejects_unknown_names(tmp_path):
    full = corpus.Corpus.load(write_corpus(tmp_path, make_names(10)))
    assert full.select(["lib2/mod9", "lib0/mod0"]).names == ("lib0/mod0", "lib2/mod9")
    with pytest.raises(corpus.CorpusError, match="nope"):
        full.select(["nope"])


def test_sample_is_fixed_by_its_seed(tmp_path):
    full = corpus.Corpus.load(write_corpus(tmp_path, make_names(40)))
    assert full.sample(5, seed=3).names == full.sample(5, seed=3).names
    assert len(full.sample(5).names) == 5
    assert full.sample(100) is full


# Writing the description.


def test_write_corpus_description_round_trips_and_leaves_no_temp_file(tmp_path):
    write_corpus(tmp_path, {"a": _CC1, "b/c": _CC1})
    os.remove(tmp_path / corpus.DESCRIPTION_FILE)
    corpus.write_corpus_description(str(tmp_path), ["b/c", "a"])
    assert corpus.Corpus.load(str(tmp_path)).names == ("b/c", "a")
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


# Bad input: each error names the file and the fix.


def test_a_missing_description_names_the_file_and_how_to_make_a_corpus(tmp_path):
    with pytest.raises(corpus.CorpusError, match=r"corpus_description.json not found.*extract_corpus"):
        corpus.Corpus.load(str(tmp_path))


def test_an_invalid_description_is_reported(tmp_path):
    (tmp_path / corpus.DESCRIPTION_FILE).write_text("{not json")
    with pytest.raises(corpus.CorpusError, match="not valid JSON"):
        corpus.Corpus.load(str(tmp_path))


def test_an_empty_corpus_is_rejected(tmp_path):
    root = write_corpus(tmp_path, {})
    with pytest.raises(corpus.CorpusError, match="lists no modules"):
        corpus.Corpus.load(root)


def test_duplicate_module_names_are_rejected(tmp_path):
    root = write_corpus(tmp_path, {"a": _CC1})
    (tmp_path / corpus.DESCRIPTION_FILE).write_text(json.dumps({"modules": ["a", "a"]}))
    with pytest.raises(corpus.CorpusError, match="more than once: a"):
        corpus.Corpus.load(root)


def test_a_missing_bc_file_is_named(tmp_path):
    root = write_corpus(tmp_path, {"x/a": _CC1})
    os.remove(tmp_path / "x" / "a.bc")
    with pytest.raises(corpus.CorpusError, match=r"x/a\.bc is missing.*re-extract"):
        corpus.Corpus.load(root)


def test_a_missing_cmd_file_is_named(tmp_path):
    root = write_corpus(tmp_path, {"x/a": None})
    with pytest.raises(corpus.CorpusError, match=r"x/a\.cmd is missing.*fembed-bitcode=all"):
        corpus.Corpus.load(root)


def test_a_cmd_file_not_starting_with_cc1_is_rejected(tmp_path):
    root = write_corpus(tmp_path, {"a": ("clang", "-c", "a.c")})
    with pytest.raises(corpus.CorpusError, match=r"a\.cmd does not start with -cc1"):
        corpus.Corpus.load(root)


def test_a_thinlto_corpus_is_rejected_with_the_fix(tmp_path):
    root = write_corpus(tmp_path, {"a": _CC1}, has_thinlto=True)
    with pytest.raises(corpus.CorpusError, match="ThinLTO.*rebuild without -flto=thin"):
        corpus.Corpus.load(root)


def test_a_module_name_leaving_the_corpus_directory_is_rejected(tmp_path):
    (tmp_path / corpus.DESCRIPTION_FILE).write_text(json.dumps({"modules": ["../etc/a"]}))
    with pytest.raises(corpus.CorpusError, match="relative path"):
        corpus.Corpus.load(str(tmp_path))
