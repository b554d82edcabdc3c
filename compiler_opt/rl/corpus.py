"""MLGO corpus: modules of pre-optimization bitcode and the clang -cc1 commands that compile them.

Layout of a corpus directory (the MLGO format):

  corpus_description.json  {"modules": [NAME, ...], "has_thinlto": false,
                            "global_command_override": ["-cc1", ...]}   (the override is optional)
  NAME.bc                  the module's bitcode before optimization (clang's embedded `.llvmbc`)
  NAME.cmd                 its clang -cc1 arguments (clang's embedded `.llvmcmd`): `\\0`-separated,
                           starting with `-cc1`, without input or output file

NAME is a relative path and may contain `/`. With `global_command_override`, every module uses those
arguments and no `.cmd` file is read. ThinLTO corpora (`has_thinlto: true`) are rejected.

`ModuleSpec.command(clang, obj)` replays a module: with no flag rules it produces the object the
original build produced (byte-identical for clang-22 builds at -Oz; `-main-file-name` is kept
because it names the object's file symbol).

Only this module knows the corpus files; writers call `module_files` and
`write_corpus_description`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import random
import string
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence

import gin

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

# Replayed commands never embed bitcode again and never carry the original output file.
ALWAYS_DELETED = ("-fembed-bitcode*", "-o")

# Placeholders a replace rule's value may use.
TEMPLATE_FIELDS = ("name", "bc_path", "module_base", "corpus_dir")

_CORPUS_FIX = (
    "make a corpus with `python -m compiler_opt.tools.extract_corpus` or "
    "`python -m compiler_opt.tools.make_default_corpus`"
)


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file and the fix."""


@gin.configurable(module="corpus")
@dataclasses.dataclass(frozen=True)
class FlagRules:
    """Edits applied to every module's -cc1 arguments, in this order: delete, replace, additional.

    The arguments are first grouped into options: an option listed in CC1_SEPARATE_VALUE_FLAGS
    (or in `separate_value_flags`) together with the argument after it, any other argument alone.

    Attributes:
      delete: patterns (fnmatch: `*`, `?`, `[...]`). `"-foo"` removes the option `-foo` (with its
        value if it takes a separate one), `"-foo*"` every option starting with `-foo`, and
        `"-mllvm -inline-threshold=*"` (two words) only the `-mllvm` options whose value matches.
        `-fembed-bitcode*` and `-o` are always deleted.
      replace: {flag: template}. A flag ending in `=` (`"-fthinlto-index="`) replaces the text after
        `=`; a separate-value flag (`"-main-file-name"`) replaces its value. An absent flag is
        appended. Templates may use {name}, {bc_path}, {module_base} (corpus path of the module
        without extension) and {corpus_dir}.
      additional: arguments appended last.
      separate_value_flags: options taking a separate value beyond CC1_SEPARATE_VALUE_FLAGS.
    """

    delete: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    additional: tuple[str, ...] = ()
    separate_value_flags: tuple[str, ...] = ()

    def __post_init__(self):
        replace = self.replace.items() if isinstance(self.replace, Mapping) else self.replace
        object.__setattr__(self, "delete", tuple(self.delete))
        object.__setattr__(self, "replace", tuple((str(k), str(v)) for k, v in replace))
        object.__setattr__(self, "additional", tuple(self.additional))
        object.__setattr__(self, "separate_value_flags", tuple(self.separate_value_flags))
        for pattern in self.delete:
            if len(pattern.split()) not in (1, 2):
                raise CorpusError(
                    f"delete rule {pattern!r}: write one flag pattern, or a separate-value flag "
                    "and a value pattern separated by one space"
                )
        for flag, template in self.replace:
            if not flag.endswith("=") and flag not in self._separate():
                raise CorpusError(
                    f"replace rule {flag!r}: the flag must end with '=' (joined value) or take a "
                    "separate value (add it to FlagRules.separate_value_flags)"
                )
            for _, field, _, _ in string.Formatter().parse(template):
                if field is not None and field not in TEMPLATE_FIELDS:
                    raise CorpusError(
                        f"replace rule {flag!r}: unknown placeholder {{{field}}}; "
                        f"use one of {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
                    )

    def _separate(self) -> frozenset[str]:
        return CC1_SEPARATE_VALUE_FLAGS | frozenset(self.separate_value_flags)

    def apply(self, cc1_args: Sequence[str], fields: Mapping[str, str]) -> tuple[str, ...]:
        """Returns `cc1_args` edited by the rules; `fields` fills the replace templates."""
        options = group_options(cc1_args, self._separate())
        patterns = [p.split() for p in (*ALWAYS_DELETED, *self.delete)]
        options = [o for o in options if not any(_matches(o, p) for p in patterns)]
        for flag, template in self.replace:
            value = template.format(**fields)
            replacement = (flag + value,) if flag.endswith("=") else (flag, value)
            hits = [i for i, o in enumerate(options) if _is_replaced(o, flag)]
            for i in hits:
                options[i] = replacement
            if not hits:
                options.append(replacement)
        return tuple(arg for option in options for arg in option) + self.additional


def group_options(args: Sequence[str], separate_value_flags: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups `args` into options: a separate-value flag with its value, any other arg alone."""
    separate = frozenset(separate_value_flags)
    options, i = [], 0
    while i < len(args):
        width = 2 if args[i] in separate and i + 1 < len(args) else 1
        options.append(tuple(args[i : i + width]))
        i += width
    return options


def _matches(option: tuple[str, ...], pattern: list[str]) -> bool:
    if len(pattern) == 1:
        return fnmatch.fnmatchcase(option[0], pattern[0])
    return len(option) == 2 and all(map(fnmatch.fnmatchcase, option, pattern))


def _is_replaced(option: tuple[str, ...], flag: str) -> bool:
    if flag.endswith("="):
        return len(option) == 1 and option[0].startswith(flag)
    return len(option) == 2 and option[0] == flag


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
    """Writes corpus_description.json atomically (temp file, fsync, rename); returns its path.

    Write it after the modules' files: a corpus is complete once its description exists.
    """
    path = os.path.join(corpus_dir, DESCRIPTION_FILE)
    content = json.dumps({"modules": list(modules), "has_thinlto": has_thinlto}, indent=1)
    fd, tmp = tempfile.mkstemp(dir=corpus_dir, prefix=f".{DESCRIPTION_FILE}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def held_out_score(name: str) -> float:
    """A value in [0, 1) fixed by the module name alone (SHA-256), the same on every machine."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2.0**64


class Corpus:
    """The modules of one corpus directory, in the order of corpus_description.json."""

    def __init__(self, root: str, modules: Sequence[ModuleSpec]):
        self.root = root
        self.modules = tuple(modules)

    @classmethod
    def load(cls, path: str, rules: FlagRules | None = None) -> Corpus:
        """Reads the corpus in directory `path`; `rules` defaults to the gin-configured FlagRules.

        Raises:
          CorpusError: a file is missing or malformed (the message names it and the fix).
        """
        rules = FlagRules() if rules is None else rules
        root = os.path.abspath(path)
        description_path = os.path.join(root, DESCRIPTION_FILE)
        description = _read_description(description_path)
        override = description.get("global_command_override")
        if override is not None:
            override = _checked_override(override, description_path)
        names = description["modules"]
        modules = []
        for name in names:
            bc_path, cmd_path = module_files(root, name)
            if not os.path.isfile(bc_path):
                raise CorpusError(
                    f"{bc_path} is missing (module {name!r} of {description_path}): re-extract "
                    "the corpus, or remove the module from the description"
                )
            cc1_args = override if override is not None else _read_cmd(cmd_path)
            fields = {
                "name": name,
                "bc_path": bc_path,
                "module_base": bc_path[: -len(".bc")],
                "corpus_dir": root,
            }
            modules.append(
                ModuleSpec(
                    name=name,
                    bc_path=bc_path,
                    cc1_args=rules.apply(cc1_args, fields),
                    size_bytes=os.path.getsize(bc_path),
                )
            )
        return cls(root, modules)

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self) -> Iterator[ModuleSpec]:
        return iter(self.modules)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modules)

    def split(self, held_out_fraction: float) -> tuple[Corpus, Corpus]:
        """Splits into (train, held_out) by `held_out_score(name) < held_out_fraction`.

        A module's side depends on its name only, so it stays put when the corpus grows.
        """
        if not 0.0 <= held_out_fraction <= 1.0:
            raise ValueError(f"held_out_fraction must be in [0, 1], got {held_out_fraction}")
        held = [held_out_score(m.name) < held_out_fraction for m in self.modules]
        train = [m for m, h in zip(self.modules, held, strict=True) if not h]
        held_out = [m for m, h in zip(self.modules, held, strict=True) if h]
        return Corpus(self.root, train), Corpus(self.root, held_out)

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
    if has_thinlto:
        raise CorpusError(
            f"{path} describes a ThinLTO corpus, which is not supported: rebuild without "
            "-flto=thin (embed bitcode with -Xclang -fembed-bitcode=all) and extract again"
        )
    return description


def _checked_override(override, description_path: str) -> tuple[str, ...]:
    if (
        not isinstance(override, list)
        or not all(isinstance(a, str) for a in override)
        or not override
        or override[0] != "-cc1"
    ):
        raise CorpusError(
            f'{description_path}: "global_command_override" must be a list of clang arguments '
            'starting with "-cc1" (fill it in, or remove it to use each module\'s .cmd file)'
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
