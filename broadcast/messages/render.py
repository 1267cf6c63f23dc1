"""Alert templates: load a template folder once, render it per registrant and channel.

A template is a folder under `templates/` holding `template.toml` (title, description, channels,
variables) and one file per channel part (see `CHANNEL_FILES`); docs/templates.md has the format.
Templates are compiled once per `TemplateLibrary`; rendering is a dict merge plus Jinja's
compiled render function, so fan-out to many registrants stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import escape

from broadcast.errors import ConfigurationError, InvalidInput, NotFound
from broadcast.messages.sms_text import SmsAnalysis, analyse, check_max_segments
from broadcast.messages.template_folder import (
    RESERVED,
    CompiledTemplate,
    TemplateInfo,
    Variable,
    compile_folder,
    make_environment,
    template_names,
)

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "templates"
PREVIEW_TOKEN = "Pv7Kq2Xw9Rt4Ym8Zb3Nc6Hd1Jf5Ls0Ae"  # as long as a real signed link token
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)*")

__all__ = [
    "AlertTemplate",
    "RecipientContext",
    "RenderedMessage",
    "TemplateInfo",
    "TemplateLibrary",
    "Variable",
    "list_templates",
    "load_template",
    "preview",
    "render",
]


@dataclass(frozen=True, slots=True)
class RecipientContext:
    """Per-registrant values every template can use; `manage_url` is mandatory by design."""

    manage_url: str
    unsubscribe_url: str | None = None  # one-click link; falls back to manage_url
    name: str = ""
    language: str = "en"
    confirm_url: str | None = None  # double opt-in (email)
    confirm_code: str | None = None  # double opt-in (SMS)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One channel's message for one registrant; `sms` holds the SMS encoding and segments."""

    channel: str
    body: str
    subject: str | None = None
    html: str | None = None
    sms: SmsAnalysis | None = None


class AlertTemplate:
    """A loaded template: its description plus compiled Jinja templates per channel and language."""

    def __init__(self, compiled: CompiledTemplate) -> None:
        info = self.info = compiled.info
        self._parts = compiled.parts
        self._recipient_needs = compiled.recipient_needs
        self._known = frozenset(v.name for v in info.variables)
        self._required = frozenset(info.required_variables)
        # Jinja's globals plus optional variables' defaults (so templates can test them with a
        # plain `if`), merged once here: Template.render() would re-merge globals on every call.
        first = next(iter(next(iter(self._parts.values())).values()))
        self._base = {**first.globals}
        self._base.update((v.name, v.default) for v in info.variables if v.default is not None)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def channels(self) -> tuple[str, ...]:
        return self.info.channels

    @property
    def required_variables(self) -> tuple[str, ...]:
        return self.info.required_variables

    @property
    def variables(self) -> tuple[Variable, ...]:
        return self.info.variables

    @property
    def languages(self) -> list[str]:
        """Languages with their own files for at least one channel (the default is English)."""
        return sorted({lang for _, lang in self._parts} - {""})

    def __repr__(self) -> str:
        return f"<AlertTemplate {self.name!r} channels={list(self.channels)}>"

    def check_variables(self, variables: Mapping[str, str]) -> None:
        """Refuse missing, unknown or reserved variables before anything is rendered or sent."""
        given = variables.keys()
        if missing := sorted(self._required - given):
            detail = "; ".join(f"{n}: {self.info.variable(n).description}" for n in missing)
            raise InvalidInput(
                f"template {self.name!r} needs {', '.join(missing)} ({detail})", field=missing[0]
            )
        if unknown := sorted(given - self._known):
            reserved = [n for n in unknown if n in RESERVED]
            if reserved:
                raise InvalidInput(
                    f"{', '.join(reserved)} is set per registrant or by the force, not by --var",
                    field=reserved[0],
                )
            known = ", ".join(sorted(self._known)) or "none"
            raise InvalidInput(
                f"template {self.name!r} has no variable {', '.join(unknown)} (it takes: {known})",
                field=unknown[0],
            )

    def render(
        self,
        channel: str,
        variables: Mapping[str, str],
        recipient: RecipientContext,
        *,
        force_name: str | None = None,
        public_url: str | None = None,
        max_segments: int | None = None,
    ) -> RenderedMessage:
        """Render one channel for one registrant (see module `render`)."""
        if channel not in self.channels:
            raise InvalidInput(
                f"template {self.name!r} has no {channel} message (it has: "
                f"{', '.join(self.channels)})",
                field="channel",
            )
        self.check_variables(variables)
        for field in self._recipient_needs[channel]:
            if getattr(recipient, field) is None:
                raise InvalidInput(
                    f"template {self.name!r} {channel} needs the recipient's {field}"
                )
        if force_name is None or public_url is None:
            from broadcast.settings import get_settings

            settings = get_settings()
            force_name = settings.force_name if force_name is None else force_name
            public_url = settings.public_url if public_url is None else public_url
        context = {
            **self._base,
            **variables,
            "force_name": force_name,
            "public_url": public_url,
            "name": recipient.name,
            "language": recipient.language,
            "manage_url": recipient.manage_url,
            "unsubscribe_url": recipient.unsubscribe_url or recipient.manage_url,
            "confirm_url": recipient.confirm_url,
            "confirm_code": recipient.confirm_code,
        }
        lang, parts = self._parts_for(channel, recipient.language)
        try:
            out = {
                part: "".join(tpl.root_render_func(tpl.new_context(context, shared=True)))
                for part, tpl in parts.items()
            }
        except jinja2.UndefinedError as exc:
            raise InvalidInput(f"template {self.name!r} {channel}: {exc.message}") from exc
        return self._finish(channel, lang, out, recipient, max_segments)

    def _parts_for(self, channel: str, language: str) -> tuple[str, dict[str, jinja2.Template]]:
        """The files for the registrant's language ("cy-GB", then "cy"), else the default."""
        if language and language != "en":
            for lang in (language, language.split("-")[0]):
                if (channel, lang) in self._parts:
                    return lang, self._parts[channel, lang]
        return "", self._parts[channel, ""]

    def _finish(
        self,
        channel: str,
        lang: str,
        out: dict[str, str],
        recipient: RecipientContext,
        max_segments: int | None,
    ) -> RenderedMessage:
        links = (recipient.manage_url, recipient.unsubscribe_url or recipient.manage_url)
        if channel == "sms":
            analysis = analyse(out["sms.txt"].strip())
            check_max_segments(analysis, max_segments)
            self._require_link(channel, analysis.text, links)
            return RenderedMessage(channel, analysis.text, sms=analysis)
        if channel == "voice":
            body = _BLANK_LINES.sub("\n\n", out["voice.txt"].strip())
            # English must say "press 9"; another language must at least name the digit.
            if ("press 9" if not lang else "9") not in body.lower():
                raise ConfigurationError(
                    f"template {self.name!r} voice must tell the listener to press 9 to stop calls"
                )
            return RenderedMessage(channel, body)
        body = _BLANK_LINES.sub("\n\n", out["email.txt"].strip()) + "\n"
        html = out["email.html"].strip() + "\n"
        self._require_link(channel, body, links)
        self._require_link(channel, html, tuple(str(escape(link)) for link in links))
        subject = " ".join(out["email_subject.txt"].split())
        return RenderedMessage(channel, body, subject=subject, html=html)

    def _require_link(self, channel: str, text: str, links: tuple[str, ...]) -> None:
        # A template a force writes must not be able to drop the registrant's way out.
        if not any(link in text for link in links):
            raise ConfigurationError(
                f"template {self.name!r} {channel} has no manage/unsubscribe link; "
                "every message must carry {{ manage_url }}"
            )


class TemplateLibrary:
    """The templates in one directory, each compiled on first load and then reused.

    With a `fallback` (a force's folder over the national one), a template of this folder
    overrides the fallback's of the same name, the others are the fallback's, and this folder's
    templates may include the fallback's shared parts.
    """

    def __init__(
        self, directory: Path | str | None = None, fallback: TemplateLibrary | None = None
    ) -> None:
        self.directory = Path(directory) if directory is not None else DEFAULT_DIRECTORY
        self.fallback = fallback
        searched = [self.directory] + ([fallback.directory] if fallback is not None else [])
        self.env = make_environment(*searched)
        self._loaded: dict[str, AlertTemplate] = {}

    def own_names(self) -> list[str]:
        return template_names(self.directory)

    def names(self) -> list[str]:
        own = self.own_names()
        if self.fallback is None:
            return own
        return sorted(set(own) | set(self.fallback.names()))

    def list_templates(self) -> list[TemplateInfo]:
        return [self.load(name).info for name in self.names()]

    def load(self, name: str) -> AlertTemplate:
        """The named template, compiled; `NotFound` lists the known names."""
        if name not in self._loaded:
            if name in self.own_names():
                compiled = AlertTemplate(compile_folder(self.env, self.directory, name))
            elif self.fallback is not None and name in self.fallback.names():
                compiled = self.fallback.load(name)
            else:
                names = self.names()
                raise NotFound(
                    f"no template {name!r}; known templates: {', '.join(names) or 'none'}"
                )
            self._loaded[name] = compiled
        return self._loaded[name]


@lru_cache(maxsize=64)
def library(
    directory: Path | str | None = None, national: Path | str | None = None
) -> TemplateLibrary:
    """The shared library for a directory (default: the repository's `templates/`); a force's
    folder (`directory`) falls back to the national one (`national`) when they differ."""
    if directory is None or Path(directory) == Path(national or DEFAULT_DIRECTORY):
        return TemplateLibrary(national)
    return TemplateLibrary(directory, fallback=library(national))


def list_templates(directory: Path | str | None = None) -> list[TemplateInfo]:
    return library(directory).list_templates()


def load_template(name: str, directory: Path | str | None = None) -> AlertTemplate:
    return library(directory).load(name)


def render(
    template: AlertTemplate | str,
    channel: str,
    variables: Mapping[str, str],
    recipient: RecipientContext,
    *,
    force_name: str | None = None,
    public_url: str | None = None,
    max_segments: int | None = None,
) -> RenderedMessage:
    """Render `channel` of `template` for one registrant.

    Raises:
        InvalidInput: a variable is missing, unknown or reserved; the SMS is over the limit.
        NotFound: no template of that name.
    """
    if isinstance(template, str):
        template = load_template(template)
    return template.render(
        channel,
        variables,
        recipient,
        force_name=force_name,
        public_url=public_url,
        max_segments=max_segments,
    )


def preview(
    template: AlertTemplate | str,
    variables: Mapping[str, str],
    *,
    force_name: str,
    public_url: str,
    recipient: RecipientContext | None = None,
    max_segments: int | None = None,
) -> dict[str, RenderedMessage]:
    """Every channel rendered with placeholder registrant values, for showing before sending."""
    if isinstance(template, str):
        template = load_template(template)
    if recipient is None:
        base = public_url.rstrip("/")
        recipient = RecipientContext(
            manage_url=f"{base}/m/{PREVIEW_TOKEN}",
            unsubscribe_url=f"{base}/u/{PREVIEW_TOKEN}",
            name="Alex Example",
            confirm_url=f"{base}/c/{PREVIEW_TOKEN}",
            confirm_code="123456",
        )
    return {
        channel: template.render(
            channel,
            variables,
            recipient,
            force_name=force_name,
            public_url=public_url,
            max_segments=max_segments,
        )
        for channel in template.channels
    }
