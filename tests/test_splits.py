"""Specification of the split by codebase: train, validation, test on unseen codebases, test on unseen files."""

import collections
import tempfile

import gin
import pytest

from compiler_opt.rl import corpus, module_selection, splits
from compiler_opt.rl.imitation_learning import bc_max_lib
from tests import gin_test_base
from tests.test_corpus import write_corpus

# The five codebases of the 91-module default corpus and their languages.
_DEFAULT_CODEBASES = {"brotli": "c", "zstd": "c", "lz4": "c", "fasttext": "c++", "double_conversion": "c++"}


def _names(codebases: int, per_codebase: int) -> list[str]:
    return [f"lib{c:02d}/src/file{i}" for c in range(codebases) for i in range(per_codebase)]


def _cc1(main_file: str) -> tuple[str, ...]:
    return ("-cc1", "-triple", "x86_64-pc-linux-gnu", "-Oz", "-main-file-name", main_file)


def _codebases_by_part(parts: dict[str, str]) -> dict[str, set[str]]:
    result = collections.defaultdict(set)
    for name, part in parts.items():
        result[part].add(splits.codebase_of(name))
    return result


def test_every_module_is_in_exactly_one_part_and_the_split_is_the_same_every_time():
    names = _names(20, 30)
    parts = splits.assign(names)
    assert sorted(parts) == sorted(names)
    assert set(parts.values()) == set(splits.PARTS)
    assert splits.assign(list(reversed(names))) == parts


def test_no_codebase_of_the_unseen_codebase_test_is_in_train_or_validation():
    parts = splits.assign(_names(20, 30))
    by_part = _codebases_by_part(parts)
    assert len(by_part[splits.TEST_UNSEEN_CODEBASES]) == 3
    assert not by_part[splits.TEST_UNSEEN_CODEBASES] & (by_part[splits.TRAIN] | by_part[splits.VALIDATION])
    # Unseen files come from the training codebases only.
    assert by_part[splits.TEST_UNSEEN_FILES] <= by_part[splits.TRAIN]


def test_whole_validation_codebases_are_chosen_on_a_large_corpus_and_never_overlap_the_test():
    by_part = _codebases_by_part(splits.assign(_names(20, 30)))
    validation_only = by_part[splits.VALIDATION] - by_part[splits.TRAIN]
    assert len(validation_only) == 2
    assert not validation_only & by_part[splits.TEST_UNSEEN_CODEBASES]


def test_a_module_keeps_its_part_when_its_codebases_grow():
    small = splits.assign(_names(12, 20))
    large = splits.assign(_names(12, 200))
    assert {n: large[n] for n in small} == small


def test_file_fractions_set_the_sizes_of_validation_and_unseen_files():
    parts = collections.Counter(splits.assign(_names(1, 4000)).values())
    assert parts[splits.TEST_UNSEEN_CODEBASES] == 0
    assert 700 <= parts[splits.VALIDATION] <= 900  # 20% of 4000
    assert 500 <= parts[splits.TEST_UNSEEN_FILES] <= 700  # 15%
    assert parts[splits.TRAIN] == 4000 - parts[splits.VALIDATION] - parts[splits.TEST_UNSEEN_FILES]


def test_one_or_two_codebases_give_no_unseen_codebase_test():
    for codebases in (1, 2):
        parts = splits.assign(_names(codebases, 50))
        assert splits.TEST_UNSEEN_CODEBASES not in parts.values()
        assert splits.TRAIN in parts.values()


def test_the_automatic_test_of_the_default_corpus_is_lz4_and_double_conversion():
    names = [f"{c}/m{i}" for c in _DEFAULT_CODEBASES for i in range(10)]
    test, validation = splits.held_out_codebases(splits.SplitPolicy(), _DEFAULT_CODEBASES, _DEFAULT_CODEBASES)
    assert sorted(test) == ["double_conversion", "lz4"]
    assert validation == ()
    by_part = _codebases_by_part(splits.assign(names, languages=_DEFAULT_CODEBASES))
    assert by_part[splits.TRAIN] == {"brotli", "zstd", "fasttext"}


def test_the_automatic_test_has_both_languages_when_the_corpus_has_both():
    codebases = {f"c{i:02d}": "c" for i in range(12)} | {"cxx_a": "c++", "cxx_b": "c++"}
    test, _ = splits.held_out_codebases(splits.SplitPolicy(), codebases, codebases)
    assert {codebases[c] for c in test} == {"c", "c++"}


def test_explicit_codebase_lists_are_used_as_given():
    names = _names(10, 20)
    policy = splits.SplitPolicy(test_codebases=("lib01", "lib05", "lib07"), validation_codebases=("lib03",))
    by_part = _codebases_by_part(splits.assign(names, policy))
    assert by_part[splits.TEST_UNSEEN_CODEBASES] == {"lib01", "lib05", "lib07"}
    assert "lib03" in by_part[splits.VALIDATION] and "lib03" not in by_part[splits.TRAIN]
    assert by_part[splits.TRAIN] == {f"lib{c:02d}" for c in (0, 2, 4, 6, 8, 9)}


def test_a_listed_codebase_missing_from_the_corpus_is_an_error_naming_it():
    with pytest.raises(splits.SplitError, match="not in the corpus: grpc "):
        splits.assign(_names(5, 3), splits.SplitPolicy(test_codebases=("lib01", "grpc")))


def test_a_codebase_listed_as_test_and_validation_is_an_error():
    policy = splits.SplitPolicy(test_codebases=("lib01",), validation_codebases=("lib01",))
    with pytest.raises(splits.SplitError, match="lib01"):
        splits.assign(_names(5, 3), policy)


def test_holding_out_every_codebase_is_an_error():
    with pytest.raises(splits.SplitError, match="training"):
        splits.assign(_names(2, 3), splits.SplitPolicy(test_codebases=("lib00",), validation_codebases=("lib01",)))


def test_fractions_that_leave_nothing_to_train_on_are_rejected():
    with pytest.raises(splits.SplitError, match="sum below 1"):
        splits.SplitPolicy(validation_file_fraction=0.6, test_file_fraction=0.4)


def test_stratified_sample_has_every_codebase_and_follows_their_sizes():
    names = [f"big/m{i}" for i in range(600)] + [f"mid/m{i}" for i in range(300)] + ["tiny/m0", "tiny/m1"]
    sample = splits.stratified_sample(names, 90)
    counts = collections.Counter(map(splits.codebase_of, sample))
    assert len(sample) == 90
    assert counts["tiny"] == 1
    assert 57 <= counts["big"] <= 60 and 28 <= counts["mid"] <= 31
    assert splits.stratified_sample(list(reversed(names)), 90) == list(reversed(sample))


def test_stratified_sample_of_fewer_modules_than_codebases_takes_the_largest_codebases():
    names = [f"a/m{i}" for i in range(5)] + [f"b/m{i}" for i in range(3)] + ["c/m0"]
    assert sorted(map(splits.codebase_of, splits.stratified_sample(names, 2))) == ["a", "b"]
    assert splits.stratified_sample(names, 50) == names


class CorpusSplitTest(gin_test_base.GinTestCase):
    def _corpus(self):
        modules = {}
        for c in range(4):
            for i in range(6):
                modules[f"clib{c}/f{i}"] = _cc1(f"f{i}.c")
        for c in range(3):
            for i in range(6):
                modules[f"cxxlib{c}/f{i}"] = _cc1(f"f{i}.cc")
        return write_corpus(self.enterContext(tempfile.TemporaryDirectory()), modules)

    def test_languages_are_read_from_the_compile_commands(self):
        loaded = corpus.Corpus.load(self._corpus())
        assert corpus.codebase_languages(loaded.modules) == {
            **{f"clib{c}": "c" for c in range(4)},
            **{f"cxxlib{c}": "c++" for c in range(3)},
        }

    def test_the_gin_configured_policy_decides_the_parts_of_every_binary(self):
        path = self._corpus()
        gin.parse_config("splits.SplitPolicy.test_codebases = ('clib2', 'cxxlib1')")
        test = module_selection.select(path, "test_unseen_codebases")
        assert {splits.codebase_of(m.name) for m in test} == {"clib2", "cxxlib1"}
        both_tests = {m.name for m in module_selection.select(path, "test")}
        files = {m.name for m in module_selection.select(path, "test_unseen_files")}
        assert both_tests == {m.name for m in test} | files
        train = {m.name for m in module_selection.select(path, "train")}
        assert not train & both_tests

    def test_a_sample_of_the_split_keeps_every_part_and_stays_inside_it(self):
        path = self._corpus()
        full = module_selection.load_splits(path)
        sample = module_selection.load_splits(path, max_modules=12)
        assert sum(len(m) for _, m in sample.items()) == 12
        for part, modules in sample.items():
            assert modules, part
            assert {m.name for m in modules} <= {m.name for m in full.part(part)}

    def _large_corpus(self, names):
        return write_corpus(self.enterContext(tempfile.TemporaryDirectory()), {n: _cc1("big.cc") for n in names})

    def test_large_modules_join_validation_where_the_split_puts_them_and_nowhere_else(self):
        path = self._corpus()
        gin.parse_config("splits.SplitPolicy.test_codebases = ('clib2', 'cxxlib1')")
        # Large modules of training codebases (some fall in validation, some in train or unseen files), of a
        # test codebase (never used), and of the whole-validation codebase chosen below.
        large_names = [f"{c}/big{i}" for c in ("clib0", "cxxlib0", "clib2") for i in range(12)]
        large = self._large_corpus(large_names)
        plain = module_selection.load_splits(path)
        mixed = module_selection.load_splits(path, large_data_path=large)
        parts = splits.assign([*corpus.Corpus.load(path).names, *large_names])
        expected = {n for n in large_names if parts[n] == splits.VALIDATION}
        assert expected and expected < set(large_names)
        assert not any(n.startswith("clib2/") for n in expected)
        assert mixed.large == expected
        assert [m.name for m in mixed.validation] == [*(m.name for m in plain.validation), *sorted(expected)]
        for part in (splits.TRAIN, *splits.TEST_PARTS):
            assert mixed.part(part) == plain.part(part), part
        # The large modules are validation's third kind; the other two keep the main corpus's modules only.
        kinds = bc_max_lib.validation_kind_modules(mixed)
        assert {m.name for m in kinds[bc_max_lib.VALIDATION_LARGE_MODULES]} == expected
        main_kinds = bc_max_lib.validation_kind_modules(plain)
        assert bc_max_lib.VALIDATION_LARGE_MODULES not in main_kinds
        for kind in (bc_max_lib.VALIDATION_UNSEEN_CODEBASES, bc_max_lib.VALIDATION_UNSEEN_FILES):
            assert kinds[kind] == main_kinds[kind], kind

    def test_large_train_modules_join_train_when_configured_and_validation_and_test_stay_as_they_were(self):
        path = self._corpus()
        gin.parse_config("splits.SplitPolicy.test_codebases = ('clib2', 'cxxlib1')")
        large_names = [f"{c}/big{i}" for c in ("clib0", "cxxlib0", "clib2") for i in range(12)]
        large = self._large_corpus(large_names)
        parts = splits.assign([*corpus.Corpus.load(path).names, *large_names])
        large_train = {n for n in large_names if parts[n] == splits.TRAIN}
        large_validation = {n for n in large_names if parts[n] == splits.VALIDATION}
        # Both training codebases have large train modules; the test codebase clib2 never gives any.
        assert {splits.codebase_of(n) for n in large_train} == {"clib0", "cxxlib0"}
        off = module_selection.load_splits(path, large_data_path=large)
        gin.parse_config("module_selection.load_splits.large_train_modules = None")
        every = module_selection.load_splits(path, large_data_path=large)
        main_train = [m.name for m in off.train]
        assert not set(main_train) & set(large_names)
        assert [m.name for m in every.train][: len(main_train)] == main_train
        assert sorted(m.name for m in every.train[len(main_train) :]) == sorted(large_train)
        assert every.large == large_train | large_validation
        for part in (splits.VALIDATION, *splits.TEST_PARTS):
            assert every.part(part) == off.part(part), part
        # The large modules in validation are still its third kind, and only those.
        kinds = bc_max_lib.validation_kind_modules(every)
        assert {m.name for m in kinds[bc_max_lib.VALIDATION_LARGE_MODULES]} == large_validation
        # A count takes that many, from both training codebases, and always the same ones.
        gin.parse_config("module_selection.load_splits.large_train_modules = 2")
        two = [m.name for m in module_selection.load_splits(path, large_data_path=large).train[len(main_train) :]]
        assert len(two) == 2 and set(two) < large_train
        assert {splits.codebase_of(n) for n in two} == {"clib0", "cxxlib0"}
        assert [m.name for m in module_selection.load_splits(path, large_data_path=large).train] == [*main_train, *two]

    def test_large_train_modules_without_a_large_corpus_is_an_error_naming_the_flag(self):
        path = self._corpus()
        gin.parse_config("module_selection.load_splits.large_train_modules = 5")
        with pytest.raises(ValueError, match="--large_data_path"):
            module_selection.load_splits(path)

    def test_a_module_in_both_corpora_is_an_error_naming_it(self):
        path = self._corpus()
        large = self._large_corpus(["clib0/f3", "clib0/big"])
        with pytest.raises(corpus.CorpusError, match=r"both hold \['clib0/f3'\]"):
            module_selection.load_splits(path, large_data_path=large)


@pytest.mark.integration
def test_the_default_corpus_split(default_corpus):
    split = module_selection.load_splits(default_corpus)
    assert split.codebases(splits.TEST_UNSEEN_CODEBASES) == ["double_conversion", "lz4"]
    assert split.codebases(splits.TRAIN) == ["brotli", "fasttext", "zstd"]
    assert {split.languages[c] for c in split.codebases(splits.TEST_UNSEEN_CODEBASES)} == {"c", "c++"}
    assert [len(split.part(p)) for p in splits.PARTS] == [55, 11, 12, 13]
