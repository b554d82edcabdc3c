"""Specification of the MLGO corpus reader: files, flag rules, selection and bad input (the split: test_splits.py)."""

import json
import os
import pickle
import shutil
import subprocess
import tempfile

import gin
import pytest

from compiler_opt.rl import corpus, env, policies
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


# Flag rules: each case as MLGO's corpus.py (`delete_flags`, `replace_flags`, `additional_flags`) treats it.


def apply(rules, args=_CC1):
    fields = {
        "name": "m",
        "bc_path": "/c/m.bc",
        "module_base": "/c/m",
        "corpus_dir": "/c",
        "context": corpus.ReplaceContext(module_full_path="/c/m.bc", thinlto_full_path="/c/m.thinlto.bc"),
    }
    return rules.apply(args, fields)


def test_delete_removes_every_option_starting_with_the_flag():
    args = ("-cc1", "-fprofile-sample-use=/p.afdo", "-fprofile-sample-accurate", "-Oz")
    assert apply(corpus.FlagRules(delete=("-fprofile-sample-use",)), args) == (
        "-cc1",
        "-fprofile-sample-accurate",
        "-Oz",
    )


def test_delete_of_mlgo_default_flags_removes_joined_and_separate_forms():
    args = ("-cc1", "-fthinlto-index=bad", "-split-dwarf-file", "/tmp/foo.dwo", "-split-dwarf-output", "some.dwo")
    mlgo_defaults = (
        "-split-dwarf-file",
        "-split-dwarf-output",
        "-fthinlto-index",
        "-fprofile-sample-use",
        "-fprofile-remapping-file",
    )
    assert apply(corpus.FlagRules(delete=mlgo_defaults), args) == ("-cc1",)
    assert apply(corpus.FlagRules(delete=mlgo_defaults), ("-cc1",)) == ("-cc1",)


def test_deleting_a_flag_without_value_keeps_the_flag_after_it():
    # The one difference from MLGO, which would also drop `-vectorize-slp` here.
    out = apply(corpus.FlagRules(delete=("-fskip-odr-check-in-gmf",)))
    assert "-fskip-odr-check-in-gmf" not in out
    assert "-vectorize-slp" in out


def test_deleting_a_separate_value_flag_removes_its_value():
    out = apply(corpus.FlagRules(delete=("-main-file-name", "-pic-level")))
    assert "a.c" not in out and "-main-file-name" not in out
    assert "2" not in out and "-mrelocation-model" in out and "pic" in out


def test_a_two_word_rule_deletes_only_the_options_whose_value_starts_with_it():
    args = ("-cc1", "-mllvm", "-inline-threshold=50", "-mllvm", "-vectorize-loops")
    rules = corpus.FlagRules(delete=("-mllvm -inline-threshold",))
    assert apply(rules, args) == ("-cc1", "-mllvm", "-vectorize-loops")


def test_a_value_that_looks_like_a_deleted_flag_is_kept():
    args = ("-cc1", "-main-file-name", "-Oz", "-Oz")
    assert apply(corpus.FlagRules(delete=("-Oz",)), args) == ("-cc1", "-main-file-name", "-Oz")


def test_replace_by_flag_name_substitutes_a_joined_value_in_place():
    args = ("-cc1", "-fthinlto-index=old.bc", "-Oz")
    rules = corpus.FlagRules(replace={"-fthinlto-index": "{module_base}.thinlto.bc"})
    assert apply(rules, args) == ("-cc1", "-fthinlto-index=/c/m.thinlto.bc", "-Oz")


def test_replace_substitutes_a_separate_value_in_place():
    rules = corpus.FlagRules(replace={"-main-file-name": "{name}.c"})
    out = apply(rules)
    assert out[out.index("-main-file-name") + 1] == "m.c"
    assert "a.c" not in out and len(out) == len(_CC1) - 1


def test_replace_templates_may_use_mlgo_context_fields():
    args = ("-cc1", "-fthinlto-index=old.bc")
    rules = corpus.FlagRules(replace={"-fthinlto-index": "{context.thinlto_full_path}"})
    assert apply(rules, args) == ("-cc1", "-fthinlto-index=/c/m.thinlto.bc")


def test_replace_matches_the_flag_name_not_a_longer_flag():
    args = ("-cc1", "-fprofile-sample-use-x=1", "-fprofile-sample-use=/p.afdo")
    rules = corpus.FlagRules(replace={"-fprofile-sample-use": "/q.afdo"})
    assert apply(rules, args) == ("-cc1", "-fprofile-sample-use-x=1", "-fprofile-sample-use=/q.afdo")


def test_replacing_an_absent_flag_is_an_error():
    rules = corpus.FlagRules(replace={"-ferror-limit": "0"})
    with pytest.raises(corpus.CorpusError, match="-ferror-limit found no such flag"):
        apply(rules, ("-cc1", "-Oz"))


def test_replacing_a_flag_present_twice_is_an_error():
    rules = corpus.FlagRules(replace={"-fthinlto-index": "x"})
    with pytest.raises(corpus.CorpusError, match="more than once"):
        apply(rules, ("-cc1", "-fthinlto-index=a", "-fthinlto-index=b"))


def test_replacing_a_flag_that_has_no_value_is_an_error_naming_the_fix():
    rules = corpus.FlagRules(replace={"-vectorize-slp": "x"})
    with pytest.raises(corpus.CorpusError, match="separate_value_flags"):
        apply(rules)


def test_a_trailing_equals_sign_on_a_replace_key_names_the_same_flag():
    args = ("-cc1", "-fthinlto-index=old.bc")
    rules = corpus.FlagRules(replace={"-fthinlto-index=": "new.bc"})
    assert apply(rules, args) == ("-cc1", "-fthinlto-index=new.bc")


def test_additional_flags_come_last_and_may_use_placeholders():
    rules = corpus.FlagRules(delete=("-Oz",), additional=("-Os", "-fsome={context.module_full_path}"))
    assert apply(rules)[-2:] == ("-Os", "-fsome=/c/m.bc")


@pytest.mark.parametrize(
    "rules",
    [
        dict(additional=("-fsomething",), replace={"-fsomething": "v"}),
        dict(additional=("-fsomething=new_value",), replace={"-fsomething": "v"}),
        dict(delete=("-fsomething",), replace={"-fsomething": "v"}),
        dict(additional=("-fsomething",), delete=("-fsomething",)),
        dict(additional=("-fsomething=value",), delete=("-fsomething",)),
    ],
)
def test_a_flag_in_two_kinds_of_rule_is_rejected(rules):
    with pytest.raises(corpus.CorpusError, match="-fsomething appear in more than one"):
        corpus.FlagRules(**rules)


def test_a_rule_with_an_unknown_placeholder_is_rejected():
    with pytest.raises(corpus.CorpusError, match=r"\{path\}"):
        corpus.FlagRules(replace={"-fthinlto-index": "{path}"})
    with pytest.raises(corpus.CorpusError, match=r"\{context.other\}"):
        corpus.FlagRules(additional=("-x={context.other}",))


def test_braces_in_a_cmd_file_are_kept_verbatim(tmp_path):
    args = ("-cc1", "-DMACRO(expr)=do {} while(0)")
    rules = corpus.FlagRules(additional=("-fextra={bc_path}",))
    spec = load_one(tmp_path, args, rules)
    assert spec.cc1_args == ("-cc1", "-DMACRO(expr)=do {} while(0)", f"-fextra={spec.bc_path}")


def test_an_extra_separate_value_flag_takes_its_value_along():
    args = ("-cc1", "-my-flag", "v", "-Oz")
    rules = corpus.FlagRules(delete=("-my-flag",), separate_value_flags=("-my-flag",))
    assert apply(rules, args) == ("-cc1", "-Oz")


def test_a_replace_rule_that_does_not_fit_a_module_names_its_cmd_file(tmp_path):
    rules = corpus.FlagRules(replace={"-fprofile-sample-use": "/p.afdo"})
    with pytest.raises(corpus.CorpusError, match=r"lib/a\.cmd, module 'lib/a': .*-fprofile-sample-use"):
        load_one(tmp_path, rules=rules)


class FlagRulesFromGinTest(gin_test_base.GinTestCase):
    def test_load_uses_the_gin_configured_rules(self):
        gin.parse_config("corpus.FlagRules.delete = ['-faddrsig']\ncorpus.FlagRules.additional = ['-w']")
        with tempfile.TemporaryDirectory() as root:
            write_corpus(root, {"a": _CC1})
            spec = corpus.Corpus.load(root).modules[0]
        self.assertNotIn("-faddrsig", spec.cc1_args)
        self.assertEqual(spec.cc1_args[-1], "-w")

    def test_an_mlgo_replace_dictionary_binds_from_gin(self):
        gin.parse_config("corpus.FlagRules.replace = {'-main-file-name': '{name}.c'}")
        with tempfile.TemporaryDirectory() as root:
            write_corpus(root, {"a": _CC1})
            spec = corpus.Corpus.load(root).modules[0]
        self.assertEqual(spec.cc1_args[spec.cc1_args.index("-main-file-name") + 1], "a.c")


# Global command override: MLGO's forms.


def test_a_cc1_override_replaces_every_cmd_file_and_takes_the_rules(tmp_path):
    root = write_corpus(tmp_path, {"a": None, "b": None}, global_command_override=["-cc1", "-Oz", "-faddrsig"])
    specs = corpus.Corpus.load(root, rules=corpus.FlagRules(delete=("-faddrsig",))).modules
    assert [s.cc1_args for s in specs] == [("-cc1", "-Oz")] * 2


def test_a_driver_override_with_c_is_used_as_given(tmp_path):
    options = ["-O2", "--target=x86_64-pc-linux-gnu", "-mllvm", "-import-instr-limit=5", "-c"]
    root = write_corpus(tmp_path, {"a": None}, global_command_override=options)
    spec = corpus.Corpus.load(root).modules[0]
    assert spec.command("clang-22", "/o/a.o") == ["clang-22", *options, "-x", "ir", spec.bc_path, "-o", "/o/a.o"]


def test_an_unfilled_override_is_rejected_with_the_fix(tmp_path):
    root = write_corpus(tmp_path, {"a": None}, global_command_override=["<UNSPECIFIED>"])
    with pytest.raises(corpus.CorpusError, match="global_command_override.*not filled in"):
        corpus.Corpus.load(root)


@pytest.mark.parametrize("override", [[], ["-O2"], "-cc1 -Oz", ["-cc1", 3]])
def test_an_override_that_cannot_compile_is_rejected(tmp_path, override):
    root = write_corpus(tmp_path, {"a": None}, global_command_override=override)
    with pytest.raises(corpus.CorpusError, match="global_command_override"):
        corpus.Corpus.load(root)


# ThinLTO corpora: the corpus's index replaces the recorded one; MLGO's flags are appended.


def write_thinlto_corpus(root, cmd=_CC1 + ("-fthinlto-index=build/a.o.thinlto.bc",), **description):
    write_corpus(root, {"lib/a": cmd}, has_thinlto=True, **description)
    (root / "lib" / "a.thinlto.bc").write_bytes(b"BC\xc0\xde")
    return str(root)


def test_a_thinlto_module_compiles_with_the_corpus_index_and_assume_merged(tmp_path):
    spec = corpus.Corpus.load(write_thinlto_corpus(tmp_path)).modules[0]
    index = str(tmp_path / "lib" / "a.thinlto.bc")
    assert f"-fthinlto-index={index}" in spec.cc1_args
    assert not [a for a in spec.cc1_args if a.startswith("-fthinlto-index=build")]
    assert spec.cc1_args[-2:] == ("-mllvm", "-thinlto-assume-merged")


def test_a_thinlto_override_gets_the_index_appended(tmp_path):
    root = write_thinlto_corpus(tmp_path, cmd=None, global_command_override=["-O2", "-c"])
    spec = corpus.Corpus.load(root, rules=corpus.FlagRules(additional=("-w",))).modules[0]
    index = str(tmp_path / "lib" / "a.thinlto.bc")
    assert spec.cc1_args == ("-O2", "-c", f"-fthinlto-index={index}", "-mllvm", "-thinlto-assume-merged", "-w")


def test_a_thinlto_cmd_without_an_index_flag_is_named(tmp_path):
    root = write_thinlto_corpus(tmp_path, cmd=_CC1)
    with pytest.raises(corpus.CorpusError, match=r"lib/a\.cmd, module 'lib/a': .*-fthinlto-index.*has_thinlto"):
        corpus.Corpus.load(root)


def test_a_missing_thinlto_index_is_named(tmp_path):
    root = write_thinlto_corpus(tmp_path)
    os.remove(tmp_path / "lib" / "a.thinlto.bc")
    with pytest.raises(corpus.CorpusError, match=r"lib/a\.thinlto\.bc is missing.*corpus_description\.json"):
        corpus.Corpus.load(root)


def test_a_thinlto_corpus_sets_the_index_itself(tmp_path):
    root = write_thinlto_corpus(tmp_path)
    with pytest.raises(corpus.CorpusError, match="remove the replace rule"):
        corpus.Corpus.load(root, rules=corpus.FlagRules(replace={"-fthinlto-index": "x"}))
    with pytest.raises(corpus.CorpusError, match="-fthinlto-index appear in more than one"):
        corpus.Corpus.load(root, rules=corpus.FlagRules(delete=("-fthinlto-index",)))


def test_the_thinlto_index_placeholder_needs_a_thinlto_corpus(tmp_path):
    rules = corpus.FlagRules(additional=("-fthinlto-index={context.thinlto_full_path}",))
    with pytest.raises(corpus.CorpusError, match="not a ThinLTO corpus"):
        load_one(tmp_path, rules=rules)


# Split, selection, sampling.


def make_names(n):
    return {f"lib{i % 7}/mod{i}": _CC1 for i in range(n)}


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


def test_a_module_name_leaving_the_corpus_directory_is_rejected(tmp_path):
    (tmp_path / corpus.DESCRIPTION_FILE).write_text(json.dumps({"modules": ["../etc/a"]}))
    with pytest.raises(corpus.CorpusError, match="relative path"):
        corpus.Corpus.load(str(tmp_path))


# A ThinLTO corpus built by real clang-22, as MLGO's distributed-ThinLTO extraction makes one.

_THINLTO_SOURCES = {
    "a.c": "int b_scale(int x);\nint a_entry(int x) { return b_scale(x) + b_scale(x + 1); }\n",
    "b.c": "int b_scale(int x) { return x * 3 + (x >> 2); }\n",
}


def build_thinlto_corpus(work) -> str:
    """Compiles a.c and b.c with -flto=thin, links their summaries into per-module indexes (llvm-lto2-22), runs
    a's ThinLTO backend with its post-import bitcode embedded, and extracts module `lib/a` (its .llvmbc, .llvmcmd
    and index) into an MLGO corpus with has_thinlto: true. Returns the corpus directory."""
    for name, text in _THINLTO_SOURCES.items():
        (work / name).write_text(text)
        subprocess.run(["clang-22", "-flto=thin", "-Oz", "-c", name, "-o", name[:-2] + ".o"], cwd=work, check=True)
    resolutions = ["-r", "a.o,a_entry,px", "-r", "a.o,b_scale,", "-r", "b.o,b_scale,px"]
    subprocess.run(
        ["llvm-lto2-22", "run", "-thinlto-distributed-indexes", "a.o", "b.o", "-o", "lto", *resolutions],
        cwd=work,
        check=True,
    )
    backend = ["clang-22", "-Oz", "-c", "-x", "ir", "a.o", "-fthinlto-index=a.o.thinlto.bc", "-o", "a.native.o"]
    subprocess.run([*backend, "-mllvm", "-lto-embed-bitcode=post-merge-pre-opt"], cwd=work, check=True)
    root = work / "corpus"
    (root / "lib").mkdir(parents=True)
    sections = [f"--dump-section=.llvmbc={root / 'lib' / 'a.bc'}", f"--dump-section=.llvmcmd={root / 'lib' / 'a.cmd'}"]
    subprocess.run(["llvm-objcopy-22", *sections, "a.native.o", os.devnull], cwd=work, check=True)
    shutil.copyfile(work / "a.o.thinlto.bc", root / "lib" / "a.thinlto.bc")
    corpus.write_corpus_description(str(root), ["lib/a"], has_thinlto=True)
    return str(root)


@pytest.mark.integration
def test_a_real_thinlto_corpus_loads_and_compiles_under_a_policy(tmp_path):
    root = build_thinlto_corpus(tmp_path)
    spec = corpus.Corpus.load(root).modules[0]
    assert f"-fthinlto-index={root}/lib/a.thinlto.bc" in spec.cc1_args
    assert "-fthinlto-index=a.o.thinlto.bc" not in spec.cc1_args
    assert not [a for a in spec.cc1_args if a.startswith("-lto-embed-bitcode")]

    # env compiles in a fresh directory, where the build's a.o.thinlto.bc and b.o are out of reach.
    stock = env.compile_plain(spec)
    heuristic = env.compile_module(spec, policies.parse("heuristic"))
    never = env.compile_module(spec, policies.parse("never"))

    assert stock.ok and heuristic.ok and never.ok, (stock.error, heuristic.error, never.error)
    assert heuristic.horizon >= 2  # both calls of b_scale, imported from b.c, are decisions
    assert heuristic.text_size == stock.text_size
    assert never.text_size != heuristic.text_size
