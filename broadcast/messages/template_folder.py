"""Reading an alert template folder: `template.toml` checked, channel files compiled by Jinja.

`broadcast.messages.render` wraps the result in an `AlertTemplate`; this module only knows the
folder format (docs/templates.md).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2 import meta, nodes
from markupsafe import Markup, escape

from broadcast.errors import ConfigurationError

# The files that make up each channel's message, in a template folder.
CHANNEL_FILES: dict[str, tuple[str, ...]] = {
    "sms": ("sms.txt",),
    "email": ("email_subject.txt", "email.txt", "email.html"),
    "voice": ("voice.txt",),
}
# Values that differ per registrant; templates read them, operators never set them.
RECIPIENT_FIELDS = (
    "name",
    "manage_url",
    "unsubscribe_url",
    "language",
    "confirm_url",
    "confirm_code",
)
GLOBALS = ("force_name", "public_url")  # the same for every registrant of a force
RESERVED = frozenset(RECIPIENT_FIELDS + GLOBALS)
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")


@dataclass(frozen=True, slots=True)
class Variable:
    """A value the operator supplies when sending (`--var name=value`)."""

    name: str
    description: str
    example: str
    default: str | None = None  # a variable with a default is optional

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """A template's description, as listed to an operator."""

    name: str
    title: str
    description: str
    channels: tuple[str, ...]
    variables: tuple[Variable, ...]

    @property
    def required_variables(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables if v.required)

    @property
    def examples(self) -> dict[str, str]:
        """Example values for every variable: enough to preview the template."""
        return {v.name: v.example for v in self.variables if v.example or v.required}

    def variable(self, name: str) -> Variable:
        return next(v for v in self.variables if v.name == name)


def read_template_info(folder: Path) -> TemplateInfo:
    """Read and check `folder/template.toml`.

    Raises:
        ConfigurationError: the file is missing, not TOML, or describes the template wrongly.
    """
    path = folder / "template.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc

    def fail(why: str) -> ConfigurationError:
        return ConfigurationError(f"{path}: {why}")

    for key in ("title", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise fail(f"'{key}' must be a non-empty string")
    channels = data.get("channels")
    if not isinstance(channels, list) or not channels or not set(channels) <= CHANNEL_FILES.keys():
        raise fail(f"'channels' must be a list drawn from {', '.join(CHANNEL_FILES)}")
    for channel in channels:
        for filename in CHANNEL_FILES[channel]:
            if not (folder / filename).is_file():
                raise fail(f"channel {channel} needs {filename} in {folder}")

    variables = []
    for name, spec in (data.get("variables") or {}).items():
        if (
            not name.isidentifier()
            or name in RECIPIENT_FIELDS
            or name in ("force_name", "public_url")
        ):
            raise fail(f"variable name {name!r} is not allowed (reserved or not an identifier)")
        if not isinstance(spec, dict) or not isinstance(spec.get("description"), str):
            raise fail(f"variable {name!r} needs a description")
        example, default = spec.get("example", ""), spec.get("default")
        if not isinstance(example, str) or not isinstance(default, str | None):
            raise fail(f"variable {name!r}: example and default must be strings")
        variables.append(Variable(name, spec["description"], example, default))

    ordered = tuple(c for c in CHANNEL_FILES if c in channels)
    return TemplateInfo(
        folder.name, data["title"].strip(), data["description"].strip(), ordered, tuple(variables)
    )


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A folder's description and its Jinja templates, keyed (channel, language) then file name.

    Language "" is the default; `recipient_needs` lists the optional registrant fields
    (confirm_url, confirm_code) each channel reads, so a render can refuse before it starts.
    """

    info: TemplateInfo
    parts: dict[tuple[str, str], dict[str, jinja2.Template]]
    recipient_needs: dict[str, frozenset[str]]


def make_environment(*directories: Path) -> jinja2.Environment:
    """Strict undefined (a missing variable is an error), autoescape for .html files only; a
    file is looked for in each directory in turn."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(directories)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # compiled once; a long-running worker is restarted to pick up edits
    )
    env.filters["paragraphs"] = paragraphs
    env.filters["without_scheme"] = without_scheme
    return env


def template_names(directory: Path) -> list[str]:
    """Template folders; a folder starting with `_` or `.` holds shared parts, not a template."""
    if not directory.is_dir():
        raise ConfigurationError(f"templates directory {directory} does not exist")
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_dir() and p.name[0] not in "_." and (p / "template.toml").is_file()
    )


def compile_folder(env: jinja2.Environment, directory: Path, name: str) -> CompiledTemplate:
    """Read, compile and check one template folder.

    Raises:
        ConfigurationError: bad template.toml, a missing file, a Jinja syntax error, or a file
            that reads a variable template.toml does not declare.
    """
    folder = directory / name
    info = read_template_info(folder)
    parts: dict[tuple[str, str], dict[str, jinja2.Template]] = {}
    needs: dict[str, frozenset[str]] = {}
    used: set[str] = set()
    for channel in info.channels:
        needs[channel] = frozenset()
        for lang in _languages(folder, channel):
            files = {f: f"{name}/{_lang_file(f, lang)}" for f in CHANNEL_FILES[channel]}
            parts[channel, lang] = {f: _get(env, path) for f, path in files.items()}
            names = set().union(*(_names_used(env, path) for path in files.values()))
            used |= names
            needs[channel] |= names & {"confirm_url", "confirm_code"}
    if undeclared := sorted(used - RESERVED - {v.name for v in info.variables}):
        raise ConfigurationError(
            f"template {name!r} uses {', '.join(undeclared)} but its template.toml does not "
            "declare it under [variables]"
        )
    return CompiledTemplate(info, parts, needs)


def paragraphs(value: str) -> Markup:
    """Jinja filter: plain text to escaped HTML paragraphs (a blank line starts a new one)."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", str(value)) if b.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.splitlines()))
        for b in blocks
    )


def without_scheme(url: str) -> str:
    """Jinja filter: `https://alerts.example.uk/` -> `alerts.example.uk`, for reading aloud."""
    return re.sub(r"^[a-z][a-z0-9+.-]*://", "", str(url)).rstrip("/")


def _get(env: jinja2.Environment, path: str) -> jinja2.Template:
    try:
        return env.get_template(path)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigurationError(f"{path} line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise ConfigurationError(f"template file {exc.name} is missing") from exc


def _names_used(env: jinja2.Environment, path: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Variables a file (and anything it extends or includes) reads from the context.

    A name some file in the chain sets with `{% set %}` (e.g. a footer line the layout reads
    with `| default(...)`) does not count as read from the context.
    """
    assert env.loader is not None
    ast = env.parse(env.loader.get_source(env, path)[0])
    names = set(meta.find_undeclared_variables(ast))
    assigned = {n.name for a in ast.find_all(nodes.Assign) for n in a.target.find_all(nodes.Name)}
    for ref in meta.find_referenced_templates(ast):
        if ref and ref not in seen:
            names |= _names_used(env, ref, seen | {path})
    return names - assigned


def _languages(folder: Path, channel: str) -> list[str]:
    """ "" (the default) plus each language with a complete set of this channel's files."""
    stem, ext = CHANNEL_FILES[channel][0].split(".", 1)
    found = sorted(
        lang
        for p in folder.glob(f"{stem}.*.{ext}")
        if _LANGUAGE.fullmatch(lang := p.name[len(stem) + 1 : -len(ext) - 1])
    )
    for lang in found:
        for filename in CHANNEL_FILES[channel]:
            if not (folder / _lang_file(filename, lang)).is_file():
                raise ConfigurationError(f"{folder.name}/{_lang_file(filename, lang)} is missing")
    return ["", *found]


def _lang_file(filename: str, lang: str) -> str:
    if not lang:
        return filename
    stem, ext = filename.split(".", 1)
    return f"{stem}.{lang}.{ext}"
