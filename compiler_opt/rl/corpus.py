"""MLGO corpus: modules of pre-optimization bitcode and the clang commands that compile them.

Layout of a corpus directory (the MLGO format):

  corpus_description.json  {"modules": [NAME, ...], "has_thinlto": false,
                            "global_command_override": [ARG, ...]}   (the override is optional)
  NAME.bc                  the module's bitcode before optimization (clang's embedded `.llvmbc`)
  NAME.cmd                 its clang -cc1 arguments (clang's embedded `.llvmcmd`): `\\0`-separated,
                           starting with `-cc1`, without input or output file
  NAME.thinlto.bc          ThinLTO corpora only: the module's ThinLTO summary index

NAME is a relative path and may contain `/`.

`global_command_override`, as in MLGO: absent, every module uses its `.cmd`; a list of arguments, every
module uses that list and no `.cmd` is read; it is either `-cc1` arguments (first element `-cc1`) or clang
driver options that include `-c` (MLGO's ThinLTO recipe: options read off the link, e.g.
`["-O2", "--target=...", "-c"]`). `["<UNSPECIFIED>"]` (what MLGO's extractor writes for a ThinLTO link)
is an error until it is filled in.

ThinLTO (`"has_thinlto": true`), as in MLGO: NAME.bc is the module after the ThinLTO import step
(e.g. clang's `-mllvm -lto-embed-bitcode=post-merge-pre-opt` in a distributed ThinLTO backend) and
NAME.thinlto.bc its index. The `-fthinlto-index=` of each `.cmd` is replaced by the corpus's NAME.thinlto.bc
(a `.cmd` without one is an error); with `global_command_override`, `-fthinlto-index=NAME.thinlto.bc` is
appended instead. Either way `-mllvm -thinlto-assume-merged` is appended, so that clang compiles the
already-imported module without looking for the other modules of the link.

`ModuleSpec.command(clang, obj)` replays a module: with no flag rules it produces the object the
original build produced (byte-identical for clang-22 builds at -Oz; `-main-file-name` is kept
because it names the object's file symbol).

Only this module knows the corpus files; writers call `module_files` and
`write_corpus_description`.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import json
import os
import random
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence

import gin
from absl import logging

from compiler_opt.rl import atomic_file
from compiler_opt.rl import splits as splits_lib

DESCRIPTION_FILE = "corpus_description.json"

# Options of clang-22 -cc1 written `-flag VALUE` (from `clang-22 -cc1 --help`): a rule that removes
# one of them also removes its value. Any other option is a single argument, so deleting
# `-fskip-odr-check-in-gmf` keeps the `-vectorize-slp` that follows it. A missing entry fails
# loudly (clang then reads the orphaned value as an input file); an extra one would fail silently.
CC1_SEPARATE_VALUE_FLAGS = frozenset(
    """
    -D -F -I -MQ -MT -U -add-plugin -analyze-function -analyzer-checker -analyzer-config
    -analyzer-config-compatibility-mode -analyzer-constraints -analyzer-disable-checker
    -analyzer-dump-egraph -analyzer-inline-max-stack-depth -analyzer-inlining-mode
    -analyzer-max-loop -analyzer-output -analyzer-purge -as-secure-log-file -ast-dump-filter
    -ast-merge -aux-target-cpu -aux-target-feature -aux-triple -c-isystem -chain-include
    -code-completion-at -cxx-isystem -darwin-target-variant-triple -default-function-attr
    -dependency-dot -dependency-file -diagnostic-log-file -dumpdir -dwarf-debug-flags
    -error-on-deserialized-decl -exception-model -fbracket-depth -fconstant-string-class
    -fcuda-include-gpubinary -fdiagnostics-format -fdiagnostics-show-category -ferror-limit
    -fexperimental-openacc-macro-override -fmodule-feature -fmodules-user-build-path
    -fopenmp-host-ir-file-path -ftabstop -function-alignment -header-include-file -hlsl-entry
    -iapinotes-modules -idirafter -iframework -iframeworkwithsysroot -imacros -include
    -include-pch -internal-externc-isystem -internal-iframework -internal-isystem -iprefix
    -iquote -isysroot -isystem -ivfsoverlay -iwithprefix -iwithprefixbefore -iwithsysroot -load
    -main-file-name -mdebug-pass -meabi -mfloat-abi -mfpmath -mlimit-float-precision
    -mlink-bitcode-file -mlink-builtin-bitcode -mllvm -mmlir -module-dependency-dir -mregparm
    -mrelocation-model -msmall-data-limit -mthread-model -mtp -o -objc-isystem -objcxx-isystem
    -opt-record-file -opt-record-format -opt-record-passes -pic-level -plugin
    -record-command-line -remap-file -resource-dir -serialize-diagnostic-file -source-date-epoch
    -split-dwarf-file -split-dwarf-output -stack-protector -stack-protector-buffer-size
    -stack-usage-file -target-abi -target-cpu -target-feature -target-linker-version -triple
    -tune-cpu -vfsoverlay -working-directory -x
    """.split()
)

# What MLGO's extractor writes into a ThinLTO corpus description until the user fills the override in.
UNSPECIFIED_OVERRIDE = ("<UNSPECIFIED>",)

# ThinLTO: the flag that names a module's index, the index file's suffix in the corpus, and the flags appended
# so that clang compiles the already-imported module alone (the same flags MLGO adds).
THINLTO_INDEX_FLAG = "-fthinlto-index"
THINLTO_INDEX_SUFFIX = ".thinlto.bc"
THINLTO_FLAGS = ("-mllvm", "-thinlto-assume-merged")

# Placeholders that replace and additional rules may use: ours, and MLGO's `{context.*}` names.
TEMPLATE_FIELDS = (
    "name",
    "bc_path",
    "module_base",
    "corpus_dir",
    "context.module_full_path",
    "context.thinlto_full_path",
)

_CORPUS_FIX = (
    "make a corpus with `python -m compiler_opt.tools.extract_corpus` or "
    "`python -m compiler_opt.tools.make_default_corpus`"
)


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class ReplaceContext:
    """The `{context.*}` fields of a rule template (MLGO's names). Paths are absolute.

    Attributes:
      module_full_path: the module's bitcode (NAME.bc).
      thinlto_full_path: its ThinLTO index (NAME.thinlto.bc); None outside ThinLTO corpora.
    """

    module_full_path: str
    thinlto_full_path: str | None = None


def _always_deleted(option: tuple[str, ...]) -> bool:
    """Replayed commands never embed bitcode again and never carry the original output file."""
    flag = option[0]
    return (
        flag.startswith("-fembed-bitcode")
        or flag == "-o"
        or (len(option) == 2 and flag == "-mllvm" and option[1].startswith("-lto-embed-bitcode"))
    )


@gin.configurable(module="corpus")
@dataclasses.dataclass(frozen=True)
class FlagRules:
    """Edits applied to every module's clang arguments, with MLGO's semantics (its `delete_flags`,
    `replace_flags`, `additional_flags`).

    The arguments are first grouped into options: an option listed in CC1_SEPARATE_VALUE_FLAGS
    (or in `separate_value_flags`) together with the argument after it, any other argument alone.
    Then each option is deleted, replaced or kept, in the recorded order, and `additional` is appended.

    Attributes:
      delete: flag prefixes, as in MLGO: `"-fprofile-sample-use"` deletes `-fprofile-sample-use=/p.afdo`,
        `"-split-dwarf"` deletes `-split-dwarf-file X` and `-split-dwarf-output Y`. An option that takes a
        separate value goes with its value. fnmatch wildcards (`*`, `?`, `[...]`) may be used inside a
        prefix; `"-mllvm -inline-threshold"` (two words) deletes only the `-mllvm` options whose value
        starts with `-inline-threshold`. A prefix that matches nothing is fine. `-fembed-bitcode*`, `-o`
        and `-mllvm -lto-embed-bitcode*` are always deleted.
        One difference from MLGO: MLGO also drops the argument after any deleted flag written without
        `=`; here only a flag that takes a separate value (clang's option table) takes the next argument
        along, so deleting `-faddrsig` keeps the `-fdwarf2-cfi-asm` after it.
      replace: {flag name: template}, as in MLGO: the flag's value is replaced, in place, whether it is
        joined (`-fthinlto-index=old` -> `-fthinlto-index=NEW`) or separate (`-main-file-name a.c`
        -> `-main-file-name NEW`). A trailing `=` on the name is ignored. A flag absent from a module's
        command, or present twice, is an error (MLGO raises too); to add a flag use `additional`.
      additional: arguments appended last.
      separate_value_flags: options taking a separate value beyond CC1_SEPARATE_VALUE_FLAGS.

    Templates (replace values and additional arguments, formatted as MLGO formats them, so a literal brace
    is written `{{` or `}}`) may use {name}, {bc_path}, {module_base} (the module's bitcode path without
    `.bc`), {corpus_dir}, and MLGO's {context.module_full_path} (= {bc_path}) and
    {context.thinlto_full_path} (the module's index, ThinLTO corpora only).
    A flag named in two kinds of rule (e.g. deleted and replaced) is rejected, as MLGO rejects it.
    """

    delete: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    additional: tuple[str, ...] = ()
    separate_value_flags: tuple[str, ...] = ()

    def __post_init__(self):
        replace = self.replace.items() if isinstance(self.replace, Mapping) else self.replace
        replace = tuple((_flag_name(str(k)), str(v)) for k, v in replace)
        object.__setattr__(self, "delete", tuple(self.delete))
        object.__setattr__(self, "replace", replace)
        object.__setattr__(self, "additional", tuple(self.additional))
        object.__setattr__(self, "separate_value_flags", tuple(self.separate_value_flags))
        for pattern in self.delete:
            if len(pattern.split()) not in (1, 2):
                raise CorpusError(
                    f"delete rule {pattern!r}: write one flag prefix, or a separate-value flag "
                    "and a value prefix separated by one space"
                )
        names = [name for name, _ in replace]
        for name in names:
            if not name.startswith("-") or "=" in name or len(name.split()) != 1:
                raise CorpusError(f"replace rule {name!r}: the key must be one flag name, e.g. '-fthinlto-index'")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CorpusError(f"replace rules name {', '.join(twice)} more than once; keep one rule per flag")
        added = {arg.split("=", 1)[0] for arg in self.additional}
        clash = (set(names) & set(self.delete)) | (set(names) & added) | (added & set(self.delete))
        if clash:
            raise CorpusError(
                f"flag rules: {', '.join(sorted(clash))} appear in more than one of delete / replace / additional "
                "(MLGO rejects this too); keep each flag in one kind of rule (a ThinLTO corpus replaces "
                f"{THINLTO_INDEX_FLAG} itself)"
            )
        for what, template in [
            *((f"replace rule {n!r}", t) for n, t in replace),
            *((f"additional argument {a!r}", a) for a in self.additional),
        ]:
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
            except ValueError as e:
                raise CorpusError(f"{what}: {e}; write a literal brace as {{{{ or }}}}") from e
            for field in fields:
                if field not in TEMPLATE_FIELDS:
                    raise CorpusError(
                        f"{what}: unknown placeholder {{{field}}}; "
                        f"use one of {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
                    )

    def _separate(self) -> frozenset[str]:
        return CC1_SEPARATE_VALUE_FLAGS | frozenset(self.separate_value_flags)

    def placeholders(self) -> frozenset[str]:
        """The template fields the rules use."""
        templates = [t for _, t in self.replace] + list(self.additional)
        return frozenset(
            f for t in templates for _, f, _, _ in string.Formatter().parse(t) if f is not None and f != ""
        )

    def apply(self, args: Sequence[str], fields: Mapping[str, object]) -> tuple[str, ...]:
        """Returns `args` edited by the rules; `fields` fills the templates (see TEMPLATE_FIELDS; `context` is a
        ReplaceContext).

        Raises:
          CorpusError: a replaced flag is absent, present twice, or has no value.
        """
        deletes = [p.split() for p in self.delete]
        templates = dict(self.replace)
        edited: list[tuple[str, ...]] = []
        replaced: set[str] = set()
        for option in group_options(args, self._separate()):
            if _always_deleted(option) or any(_deletes(pattern, option) for pattern in deletes):
                continue
            name = _replaced_name(option, templates)
            if name is None:
                edited.append(option)
                continue
            if name in replaced:
                raise CorpusError(f"{name} appears more than once, so the replace rule for it is ambiguous")
            replaced.add(name)
            value = templates[name].format(**fields)
            if len(option) == 2:
                edited.append((name, value))
            elif option[0] == name:
                raise CorpusError(
                    f"{name} has no value to replace; if it takes a separate value, add it to "
                    "FlagRules.separate_value_flags"
                )
            else:
                edited.append((f"{name}={value}",))
        missing = [name for name in templates if name not in replaced]
        if missing:
            raise CorpusError(
                f"the replace rule for {', '.join(missing)} found no such flag in the command (MLGO raises too); "
                "remove the rule, or add the flag with FlagRules.additional"
            )
        return tuple(arg for option in edited for arg in option) + tuple(a.format(**fields) for a in self.additional)


def _flag_name(key: str) -> str:
    return key[:-1] if key.endswith("=") else key


def group_options(args: Sequence[str], separate_value_flags: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups `args` into options: a separate-value flag with its value, any other arg alone."""
    separate = frozenset(separate_value_flags)
    options, i = [], 0
    while i < len(args):
        width = 2 if args[i] in separate and i + 1 < len(args) else 1
        options.append(tuple(args[i : i + width]))
        i += width
    return options


def _deletes(pattern: list[str], option: tuple[str, ...]) -> bool:
    """Whether the delete rule `pattern` (one or two prefixes) removes `option`."""
    if len(pattern) == 1:
        return fnmatch.fnmatchcase(option[0], pattern[0] + "*")
    return len(option) == 2 and all(fnmatch.fnmatchcase(arg, p + "*") for arg, p in zip(option, pattern, strict=True))


def _replaced_name(option: tuple[str, ...], templates: Mapping[str, str]) -> str | None:
    """The replace rule's flag name that `option` carries (`-flag VALUE`, `-flag=VALUE` or a bare `-flag`)."""
    flag = option[0]
    name = flag if flag in templates else flag.split("=", 1)[0]
    return name if name in templates and (flag == name or flag.startswith(name + "=")) else None


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
    """One module of a corpus, ready to compile.

    Attributes:
      name: the module's name in corpus_description.json (a relative path, `/`-separated).
      bc_path: absolute path of its bitcode.
      cc1_args: clang arguments after the flag rules, starting with `-cc1`; no input or output.
      size_bytes: size of the bitcode file in bytes (to schedule the largest modules first).
    """

    name: str
    bc_path: str
    cc1_args: tuple[str, ...]
    size_bytes: int

    def command(self, clang: str, obj_path: str, extra_args: Sequence[str] = ()) -> list[str]:
        """The command line that compiles this module's bitcode to the object `obj_path`."""
        return [clang, *self.cc1_args, *extra_args, "-x", "ir", self.bc_path, "-o", obj_path]


_CXX_SUFFIXES = (".cc", ".cp", ".cpp", ".cxx", ".c++", ".C", ".CPP", ".ii")


def source_language(cc1_args: Sequence[str]) -> str:
    """ "c", "c++" or "" (unknown) for a module's -cc1 arguments: from the suffix of `-main-file-name`, else from
    `-std=`."""
    for flag, value in zip(cc1_args, cc1_args[1:], strict=False):
        if flag == "-main-file-name":
            if value.endswith(_CXX_SUFFIXES):
                return "c++"
            if value.endswith((".c", ".i")):
                return "c"
    for arg in cc1_args:
        if arg.startswith("-std="):
            return "c++" if "++" in arg else "c"
    return ""


def codebase_languages(modules: Iterable[ModuleSpec]) -> dict[str, str]:
    """Codebase (first component of the module name) -> the most common known `source_language` of its modules."""
    counts: dict[str, collections.Counter] = {}
    for m in modules:
        language = source_language(m.cc1_args)
        if language:
            counts.setdefault(splits_lib.codebase_of(m.name), collections.Counter())[language] += 1
    return {c: min(n.items(), key=lambda kv: (-kv[1], kv[0]))[0] for c, n in counts.items()}


def module_files(corpus_dir: str, name: str) -> tuple[str, str]:
    """Returns the (NAME.bc, NAME.cmd) paths of module `name` in `corpus_dir`."""
    if not name or os.path.isabs(name) or ".." in name.split("/") or "\\" in name:
        raise CorpusError(
            f"module name {name!r} in {os.path.join(corpus_dir, DESCRIPTION_FILE)} must be a "
            "non-empty relative path without '..' or '\\'; rename the module"
        )
    base = os.path.join(corpus_dir, *name.split("/"))
    return base + ".bc", base + ".cmd"


def write_corpus_description(corpus_dir: str, modules: Sequence[str], has_thinlto: bool = False) -> str:
    """Writes corpus_description.json atomically (`atomic_file`); returns its path.

    Write it after the modules' files: a corpus is complete once its description exists.
    """
    path = os.path.join(corpus_dir, DESCRIPTION_FILE)
    atomic_file.write_text(path, json.dumps({"modules": list(modules), "has_thinlto": has_thinlto}, indent=1) + "\n")
    return path


class Corpus:
    """The modules of one corpus directory, in the order of corpus_description.json."""

    def __init__(self, root: str, modules: Sequence[ModuleSpec]):
        self.root = root
        self.modules = tuple(modules)

    @classmethod
    def load(cls, path: str, rules: FlagRules | None = None) -> Corpus:
        """Reads the corpus in directory `path`; `rules` defaults to the gin-configured FlagRules.

        Raises:
          CorpusError: a file is missing or malformed, or a flag rule does not fit a module's command (the
            message names the file and the fix).
        """
        rules = FlagRules() if rules is None else rules
        root = os.path.abspath(path)
        description_path = os.path.join(root, DESCRIPTION_FILE)
        description = _read_description(description_path)
        has_thinlto = description.get("has_thinlto", False)
        override = description.get("global_command_override")
        if override is not None:
            override = _checked_override(override, description_path)
            if rules != FlagRules(separate_value_flags=rules.separate_value_flags):
                logging.warning("%s: flag rules are applied to its global_command_override", description_path)
        rules = _with_thinlto(rules, override is not None, description_path) if has_thinlto else rules
        if not has_thinlto and "context.thinlto_full_path" in rules.placeholders():
            raise CorpusError(
                f"a flag rule uses {{context.thinlto_full_path}}, but {description_path} is not a ThinLTO "
                "corpus; remove the placeholder from the rule"
            )
        modules = []
        for name in description["modules"]:
            bc_path, cmd_path = module_files(root, name)
            if not os.path.isfile(bc_path):
                raise CorpusError(
                    f"{bc_path} is missing (module {name!r} of {description_path}): re-extract "
                    "the corpus, or remove the module from the description"
                )
            module_base = bc_path[: -len(".bc")]
            index_path = module_base + THINLTO_INDEX_SUFFIX if has_thinlto else None
            if index_path is not None and not os.path.isfile(index_path):
                raise CorpusError(
                    f"{index_path} is missing (module {name!r} of {description_path}, which sets "
                    '"has_thinlto": true): copy the module\'s ThinLTO index there, or set "has_thinlto" to '
                    "false for a corpus built without -flto=thin"
                )
            args, source = (override, description_path) if override is not None else (_read_cmd(cmd_path), cmd_path)
            fields = {
                "name": name,
                "bc_path": bc_path,
                "module_base": module_base,
                "corpus_dir": root,
                "context": ReplaceContext(module_full_path=bc_path, thinlto_full_path=index_path),
            }
            try:
                cc1_args = rules.apply(args, fields)
            except CorpusError as e:
                fix = (
                    f' (a ThinLTO corpus needs {THINLTO_INDEX_FLAG}= in every .cmd; set "has_thinlto" to false '
                    "for a corpus built without -flto=thin)"
                    if has_thinlto and THINLTO_INDEX_FLAG in str(e)
                    else ""
                )
                raise CorpusError(f"{source}, module {name!r}: {e}{fix}") from None
            modules.append(
                ModuleSpec(name=name, bc_path=bc_path, cc1_args=cc1_args, size_bytes=os.path.getsize(bc_path))
            )
        return cls(root, modules)

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self) -> Iterator[ModuleSpec]:
        return iter(self.modules)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modules)

    def splits(
        self, policy: splits_lib.SplitPolicy | None = None, languages: Mapping[str, str] | None = None
    ) -> splits_lib.ModuleSplits:
        """The modules by part of the split by codebase (`splits.assign`; `policy` defaults to the gin-configured
        `splits.SplitPolicy`). `languages` maps codebase -> "c"/"c++"; by default each codebase takes its modules'
        most common `source_language`."""
        if languages is None:
            languages = codebase_languages(self.modules)
        parts = splits_lib.assign(self.names, splits_lib.SplitPolicy() if policy is None else policy, languages)
        return splits_lib.ModuleSplits.of(self.modules, parts, languages)

    def select(self, names: Iterable[str]) -> Corpus:
        """The modules named in `names`, in corpus order; an unknown name raises CorpusError."""
        wanted = set(names)
        unknown = wanted.difference(self.names)
        if unknown:
            raise CorpusError(
                f"modules not in the corpus {self.root}: {', '.join(sorted(unknown))}; "
                "check the names against its corpus_description.json"
            )
        return Corpus(self.root, [m for m in self.modules if m.name in wanted])

    def sample(self, n: int, seed: int = 0) -> Corpus:
        """`n` modules drawn without replacement (all if n >= len), fixed by `seed`, corpus order."""
        if n >= len(self.modules):
            return self
        chosen = set(random.Random(seed).sample(range(len(self.modules)), n))
        return Corpus(self.root, [m for i, m in enumerate(self.modules) if i in chosen])


def _read_description(path: str) -> dict:
    if not os.path.isfile(path):
        raise CorpusError(f"{path} not found: point at an MLGO corpus directory, or {_CORPUS_FIX}")
    try:
        with open(path, encoding="utf-8") as f:
            description = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path} is not valid JSON ({e}); re-extract the corpus") from e
    if not isinstance(description, dict) or not isinstance(description.get("modules"), list):
        raise CorpusError(f'{path} has no "modules" list; {_CORPUS_FIX}')
    names = description["modules"]
    if not names:
        raise CorpusError(f"{path} lists no modules; {_CORPUS_FIX} from a non-empty build")
    if not all(isinstance(n, str) for n in names):
        raise CorpusError(f'{path}: every entry of "modules" must be a string')
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CorpusError(f"{path} lists modules more than once: {', '.join(duplicates)}; keep one entry each")
    has_thinlto = description.get("has_thinlto", False)
    if not isinstance(has_thinlto, bool):
        raise CorpusError(
            f'{path}: "has_thinlto" is {has_thinlto!r}, neither true nor false; set it to false for a corpus '
            f"built without -flto=thin, or {_CORPUS_FIX}"
        )
    return description


def _with_thinlto(rules: FlagRules, has_override: bool, description_path: str) -> FlagRules:
    """The rules plus the ThinLTO flags MLGO adds: the corpus's index in place of the recorded one (appended to an
    override, which has none), and `-mllvm -thinlto-assume-merged`."""
    if THINLTO_INDEX_FLAG in dict(rules.replace):
        raise CorpusError(
            f"{description_path} is a ThinLTO corpus, which sets {THINLTO_INDEX_FLAG} to each module's "
            f"{THINLTO_INDEX_SUFFIX} itself; remove the replace rule for it"
        )
    index = "{context.thinlto_full_path}"
    if has_override:
        return dataclasses.replace(
            rules, additional=(f"{THINLTO_INDEX_FLAG}={index}", *THINLTO_FLAGS, *rules.additional)
        )
    return dataclasses.replace(
        rules, replace=(*rules.replace, (THINLTO_INDEX_FLAG, index)), additional=(*THINLTO_FLAGS, *rules.additional)
    )


def _checked_override(override, description_path: str) -> tuple[str, ...]:
    """MLGO's override forms: `-cc1` arguments, or clang driver options that compile (`-c`)."""
    if isinstance(override, list) and tuple(override) == UNSPECIFIED_OVERRIDE:
        raise CorpusError(
            f'{description_path}: "global_command_override" is {override!r}, not filled in: replace it with the '
            "clang options that compile each module (for a ThinLTO link, those of the link: optimization level, "
            'target, -mllvm flags, and "-c"), or remove it to use each module\'s .cmd file'
        )
    if not isinstance(override, list) or not override or not all(isinstance(a, str) for a in override):
        raise CorpusError(
            f'{description_path}: "global_command_override" must be a non-empty list of clang arguments '
            "(fill it in, or remove it to use each module's .cmd file)"
        )
    if override[0] != "-cc1" and "-c" not in override:
        raise CorpusError(
            f'{description_path}: "global_command_override" holds clang driver options without "-c", so clang '
            'would link instead of compiling: add "-c" (or give -cc1 arguments, starting with "-cc1")'
        )
    return tuple(override)


def _read_cmd(path: str) -> tuple[str, ...]:
    if not os.path.isfile(path):
        raise CorpusError(
            f"{path} is missing: re-extract the corpus (objects must be built with "
            '-Xclang -fembed-bitcode=all), or set "global_command_override" in the description'
        )
    with open(path, "rb") as f:
        args = f.read().decode("utf-8", errors="surrogateescape").split("\0")
    while args and not args[-1]:
        args.pop()
    if not args or args[0] != "-cc1":
        raise CorpusError(
            f"{path} does not start with -cc1: it must hold clang's embedded .llvmcmd "
            "(\\0-separated -cc1 arguments); re-extract it from an object built with "
            "-Xclang -fembed-bitcode=all"
        )
    return tuple(args)
