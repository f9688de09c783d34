"""Prompt wording as data: the templates in `prompts/`, rendered with strict placeholders."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import yaml

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)

ROLES = ("teacher", "instructional_coach", "principal", "district_leader", "other")


def render(template: str, **values: Any) -> str:
    """Fill `{{ placeholders }}`; a missing one raises instead of printing blank."""
    return _env.from_string(template).render(**values).strip()


def _read(name: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(resources.files("prompts").joinpath(name).read_text("utf-8"), loader)


@dataclass(frozen=True, kw_only=True)
class Element:
    key: str
    name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReflectionPrompt:
    id: str
    element: str
    tags: tuple[str, ...]
    text: str
    roles: dict[str, str]

    def for_role(self, role: str | None) -> str:
        return self.roles.get(role or "", self.text)


class PromptLibrary:
    """Every template the bot speaks from; loaded once at start-up."""

    def __init__(
        self,
        reflection: dict[str, Any],
        checkin: dict[str, str],
        bands: dict[str, Any] | None = None,
    ) -> None:
        self.elements = {
            key: Element(key=key, name=spec["name"], aliases=tuple(spec.get("aliases", ())))
            for key, spec in reflection["elements"].items()
        }
        self.reflection_prompts = [
            ReflectionPrompt(
                id=item["id"],
                element=item["element"],
                tags=tuple(item.get("tags", ())),
                text=item["text"],
                roles=dict(item.get("roles", {})),
            )
            for item in reflection["prompts"]
        ]
        self.topic_prompt: dict[str, Any] = reflection["topic_prompt"]
        self.checkin = checkin
        bands = bands if bands is not None else _read("bands.yaml")
        self.band_descriptors: dict[str, dict[str, str]] = bands["descriptors"]
        self.evidence: str = bands["evidence"]

    @classmethod
    def load(cls) -> PromptLibrary:
        folder = resources.files("prompts")
        # libyaml's safe loader when present: the pure-Python one takes ~0.1 s for the library.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        reflection = yaml.load(
            folder.joinpath("reflection_prompts.yaml").read_text("utf-8"), loader
        )
        checkin = yaml.load(folder.joinpath("checkin.yaml").read_text("utf-8"), loader)
        return cls(reflection, checkin, _read("bands.yaml"))

    def element_for(self, words: str) -> Element | None:
        """The element named by `words` (its key, name or an alias)."""
        wanted = words.strip().lower().replace("-", " ").replace("_", " ")
        for element in self.elements.values():
            names = {element.key.replace("_", " "), element.name.lower().replace("-", " ")}
            names |= {alias.lower().replace("-", " ") for alias in element.aliases}
            if wanted in names:
                return element
        return None

    def element_name(self, key: str | None) -> str:
        return self.elements[key].name if key in self.elements else ""

    def checkin_text(self, name: str, **values: Any) -> str:
        return render(self.checkin[name], **values)

    def band_descriptor(self, band: str, group: str) -> str:
        """The short descriptor of `band` (Investigating ... Staging) for a role group
        (classroom, school, district; bot/scoring/bands.py maps roles to them)."""
        by_group = self.band_descriptors[band]
        return by_group.get(group, by_group["classroom"])

    def evidence_text(self, command: str) -> str:
        """What a Staging rating asks for: a piece of evidence, shared with `command`."""
        return render(self.evidence, command=command)

    def topic_text(self, topic: str, role: str | None = None) -> str:
        template = self.topic_prompt.get("roles", {}).get(role or "", self.topic_prompt["text"])
        return render(template, topic=topic)
