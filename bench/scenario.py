"""Scenario files: a pydantic model of the TOML, validation with one-line errors, and
expansion of list values into cases (asv-style parameter grids as data)."""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.catalog import TARGET_KINDS, TRANSFORMS
from bench.errors import ScenarioError
from bench.network.profiles import parse_network

DEFAULT_SCENARIO = "quick.toml"
# settings that never expand into cases
FIXED_SETTINGS = (
    "concurrency_id",
    "output_format",
    "unified",
    "switch_transform",
    "switch_at_s",
    "url",
    "app",
    "ready_path",
    "api_name",
    "inputs",
)
STREAM_EVERY_CLIENTS = ("gradio-stream", "gradio-mic")  # the browser's capture timer
# settings added for audio, voice and output streams: a list value expands into cases like the others
GRID_SETTINGS = (
    "client",
    "shape",
    "media_format",
    "chunk_s",
    "item_interval_ms",
    "steps",
    "audio_chunk_duration",
    "handler",
    "stt_ms",
    "llm_ms",
    "tts_ms",
)
Number = float | list[float]
MediaFormat = Literal["ts", "mp4", "wav", "mp3"]
VoiceHandler = Literal["echo", "agent"]
Count = int | list[int]
NetworkSpec = str | dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class Source(_Strict):
    kind: Literal["video"] = "video"
    width: int = Field(640, ge=64, le=3840)
    height: int = Field(480, ge=64, le=2160)
    fps: float = Field(30.0, gt=0, le=120)


class TargetSpec(_Strict):
    """One [[targets]] table; list values expand into one case each."""

    kind: str
    name: str | None = None
    transform: str | list[str] = "identity"
    delay_ms: Number = 0.0
    fps: Number | None = None
    users: Count = 1
    stream_every: Number | None = None
    concurrency_limit: Count | None = None
    time_limit: Number | None = None
    concurrency_id: str | None = None
    output_format: Literal["webp", "jpeg"] | None = None
    unified: bool = False
    mirror: bool = True
    switch_transform: str | None = None
    switch_at_s: float | None = Field(None, gt=0)
    url: str | None = None
    app: str | None = None
    ready_path: str | None = None
    api_name: str | None = None  # which event of a user's app (bench inspect lists them)
    inputs: dict[str, Any] | None = None  # a user's app's other inputs by label, set as the UI would set them
    network: NetworkSpec | list[NetworkSpec] | None = None
    client: str | list[str] | None = None  # one of the kind's clients (bench targets lists them)
    shape: str | list[str] | None = None  # what the app makes (kinds with shapes)
    media_format: MediaFormat | list[MediaFormat] | None = None  # HLS chunk container
    chunk_s: Number | None = None  # HLS chunk duration
    item_interval_ms: Number | None = None  # a generator's time between yields
    steps: Count | None = None  # a fake_diffusion generator's noisy steps before its final image
    audio_chunk_duration: Number | None = None  # ReplyOnPause AlgoOptions
    handler: VoiceHandler | list[VoiceHandler] | None = None  # fastrtc-voice: echo, or the STT/LLM/TTS stand-in
    stt_ms: Number | None = None
    llm_ms: Number | None = None
    tts_ms: Number | None = None

    @field_validator("client")
    @classmethod
    def _known_client(cls, value: str | list[str] | None, info: Any) -> str | list[str] | None:
        kind = TARGET_KINDS.get(info.data.get("kind", ""))
        for name in _as_list(value) if value is not None and kind else []:
            if name not in kind.allowed_clients:
                raise ValueError(f"{kind.name} has no client {name!r} (allowed: {', '.join(kind.allowed_clients)})")
        return value

    @field_validator("shape")
    @classmethod
    def _known_shape(cls, value: str | list[str] | None, info: Any) -> str | list[str] | None:
        kind = TARGET_KINDS.get(info.data.get("kind", ""))
        for name in _as_list(value) if value is not None and kind else []:
            if name not in kind.shapes:
                allowed = ", ".join(kind.shapes) or f"none: {kind.name} has one shape"
                raise ValueError(f"unknown shape {name!r} for {kind.name} (allowed: {allowed})")
        return value

    @field_validator("network")
    @classmethod
    def _known_network(cls, value: NetworkSpec | list[NetworkSpec] | None) -> NetworkSpec | list[NetworkSpec] | None:
        items = _as_list(value) if value is not None else []
        labels = [parse_network(item).name for item in items]
        if len(set(labels)) != len(labels):
            raise ValueError(f"network profiles need distinct names, got {', '.join(labels)} (give each a name key)")
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in TARGET_KINDS:
            raise ValueError(f"unknown target kind {kind!r} (allowed: {', '.join(TARGET_KINDS)})")
        return kind

    @field_validator("transform", "switch_transform")
    @classmethod
    def _known_transform(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in _as_list(value) if value is not None else []:
            if name not in TRANSFORMS:
                raise ValueError(f"unknown transform {name!r} (allowed: {', '.join(TRANSFORMS)})")
        return value

    @field_validator(
        "delay_ms",
        "fps",
        "stream_every",
        "time_limit",
        "users",
        "concurrency_limit",
        "chunk_s",
        "item_interval_ms",
        "steps",
        "audio_chunk_duration",
        "stt_ms",
        "llm_ms",
        "tts_ms",
    )
    @classmethod
    def _positive(cls, value: Any, info: Any) -> Any:
        floor = 0 if info.field_name in ("delay_ms", "stt_ms", "llm_ms", "tts_ms") else 1e-9
        for item in _as_list(value):
            if item is not None and item < floor:
                raise ValueError(f"must be {'>= 0' if floor == 0 else '> 0'}, got {item}")
        if isinstance(value, list) and not value:
            raise ValueError("an empty list expands to no case")
        return value

    @model_validator(mode="after")
    def _one_way_to_reach(self) -> TargetSpec:
        if self.url and self.app:
            raise ValueError("give either url (an app already running) or app (a script to start), not both")
        if (self.switch_transform is None) != (self.switch_at_s is None):
            raise ValueError("switch_transform and switch_at_s go together")
        if self.stream_every is not None and TARGET_KINDS[self.kind].client not in STREAM_EVERY_CLIENTS:
            raise ValueError(f"stream_every applies to gradio-stream and gradio-mic targets, not {self.kind}")
        if self.stream_every is not None and (self.url or self.app):
            raise ValueError("stream_every is the app's own setting with url / app: the client reads it from /config")
        return self

    @property
    def label(self) -> str:
        return self.name or self.kind


class Claim(_Strict):
    """`target`'s `metric` `op` `value`, or `op` the same metric of target `than`."""

    target: str
    metric: str = Field(pattern=r"^(latency_ms|event_latency_ms)\.(p50|p90|p95|p99|mean|max)$|^(fps|lost_ratio)$")
    op: Literal["<", "<=", ">", ">="]
    value: float | None = None
    than: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_bound(self) -> Claim:
        if (self.value is None) == (self.than is None):
            raise ValueError("give exactly one of value (a number) or than (another target's name)")
        return self


class Load(_Strict):
    """[load]: a ramp of simultaneous users. Every target runs users_from, users_from + step, ..., users_to users,
    each step for hold_s seconds (it replaces duration_s); `bench capacity` finds the knee of the ramp."""

    users_from: int = Field(ge=1)
    users_to: int = Field(ge=1)
    step: int = Field(1, ge=1)
    hold_s: float = Field(gt=0, le=3600)
    warmup_s: float | None = Field(None, ge=0)  # per step; replaces the scenario's warmup_s
    fps_ratio_min: float = Field(0.9, ge=0, le=1)  # a step serves its users when fps >= this x the requested rate

    @model_validator(mode="after")
    def _whole_ramp(self) -> Load:
        if self.users_to < self.users_from:
            raise ValueError(f"users_to ({self.users_to}) must be >= users_from ({self.users_from})")
        if (self.users_to - self.users_from) % self.step:
            raise ValueError(
                f"users_to ({self.users_to}) is not users_from ({self.users_from}) plus a whole number of "
                f"steps ({self.step})"
            )
        return self

    @property
    def users(self) -> list[int]:
        return list(range(self.users_from, self.users_to + 1, self.step))


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    duration_s: float = Field(10.0, gt=0, le=3600)
    warmup_s: float = Field(2.0, ge=0)
    repeat: int = Field(1, ge=1, le=100)
    source: Source = Source()
    targets: list[TargetSpec] = Field(min_length=1)
    reference: str | None = None  # a target's name: the report states every other target against it
    claims: list[Claim] = []
    load: Load | None = None  # a ramp of users: each target's users become the steps, each step lasts hold_s

    @field_validator("load")
    @classmethod
    def _users_from_the_ramp(cls, load: Load | None, info: Any) -> Load | None:
        for spec in info.data.get("targets") or [] if load is not None else []:
            if "users" in spec.model_fields_set and _as_list(spec.users) != load.users:
                raise ValueError(
                    f"target {spec.label!r} sets users ({spec.users}): with [load] every target's users ramp from "
                    "users_from to users_to, remove users from the target"
                )
        return load

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.load is not None:
            self._apply_load(self.load)
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s ({self.warmup_s}) must be shorter than duration_s ({self.duration_s})")
        labels = {t.label for t in self.targets}
        if self.reference is not None and self.reference not in labels:
            raise ValueError(f"reference {self.reference!r} names no target (allowed: {', '.join(sorted(labels))})")
        for claim in self.claims:
            for key, name in (("target", claim.target), ("than", claim.than)):
                if name is not None and name not in labels:
                    raise ValueError(f"claim {key} {name!r} names no target (allowed: {', '.join(sorted(labels))})")
        return self

    def _apply_load(self, load: Load) -> None:
        """Each step lasts hold_s (and warms up load.warmup_s); every target's users become the ramp, so
        expand_cases makes one case per step like any list value (and `bench run` runs the ramp)."""
        if "duration_s" in self.model_fields_set and self.duration_s != load.hold_s:
            raise ValueError(
                f"duration_s ({self.duration_s:g}) and load.hold_s ({load.hold_s:g}) both set how long a case "
                "lasts: with [load] give hold_s only"
            )
        if load.warmup_s is not None and "warmup_s" in self.model_fields_set and self.warmup_s != load.warmup_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s:g}) and load.warmup_s ({load.warmup_s:g}) disagree: give one of them"
            )
        self.duration_s = load.hold_s
        if load.warmup_s is not None:
            self.warmup_s = load.warmup_s
        for spec in self.targets:
            spec.users = load.users


@dataclass(frozen=True)
class Case:
    """One point of the grid: a target kind with every setting resolved."""

    target: str
    kind: str
    transform: str
    settings: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def case_id(self) -> str:
        tail = ",".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return "/".join(p for p in (self.target, self.transform, tail) if p)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.case_id)


def expand_cases(scenario: Scenario) -> list[Case]:
    """Every combination of list values, per target; `params` names what varies in the scenario."""
    raw: list[tuple[TargetSpec, str, dict[str, Any]]] = []
    for spec in scenario.targets:
        grid = {
            "transform": _as_list(spec.transform),
            "delay_ms": _as_list(spec.delay_ms),
            "fps": _as_list(spec.fps if spec.fps is not None else _default_rate(spec.kind, scenario)),
            "users": _as_list(spec.users),
            "stream_every": _as_list(spec.stream_every),
            "concurrency_limit": _as_list(spec.concurrency_limit),
            "time_limit": _as_list(spec.time_limit),
            "network": _as_list(spec.network),
            **{key: _as_list(getattr(spec, key)) for key in GRID_SETTINGS},
        }
        for values in itertools.product(*grid.values()):
            settings = dict(zip(grid, values, strict=True))
            raw.append((spec, settings.pop("transform"), settings))
    # across every target, so a value fixed on one target still pairs with the same value swept on another
    varying = {key for key in raw[0][2] if len({_fmt(settings.get(key)) for _, _, settings in raw}) > 1}
    cases = []
    for spec, transform, settings in raw:
        params = {k: v for k, v in settings.items() if k in varying and v is not None}
        if "network" in params:
            params["network"] = parse_network(params["network"]).name
        settings.update({k: getattr(spec, k) for k in FIXED_SETTINGS if getattr(spec, k)})
        settings["mirror"] = spec.mirror
        cases.append(Case(spec.label, spec.kind, transform, settings, params))
    ids = [c.case_id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ScenarioError(f"cases are not distinct: {', '.join(duplicates)} (give the targets different names)")
    return cases


def _default_rate(kind: str, scenario: Scenario) -> float:
    """Camera fps for video kinds; a kind fed markers or making items has its own default rate."""
    default = TARGET_KINDS[kind].default_rate
    return scenario.source.fps if default is None or TARGET_KINDS[kind].source == "video" else default


def comparable_case(transform: str, params: dict[str, Any], others: list[tuple[str, str, dict[str, Any]]]) -> str:
    """The one case among `others` (id, transform, params) to compare with: same transform, same shared params.

    Like with like or nothing: a case with another transform, or a choice among
    several, would compare the wrong thing silently. Raises ValueError saying why.
    """
    same = [(case_id, p) for case_id, t, p in others if t == transform]
    matches = [case_id for case_id, p in same if all(p[k] == v for k, v in params.items() if k in p)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        have = ", ".join(case_id for case_id, _, _ in others) or "no case"
        raise ValueError(f"no case with transform {transform!r} and {_fmt_params(params)} to compare with (has {have})")
    raise ValueError(f"several cases to compare with: {', '.join(matches)} (name the targets or pin their params)")


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()) or "no swept params"


def _check_than_claims(scenario: Scenario, cases: list[Case]) -> None:
    """Every case of a `than` claim's target has exactly one comparable case of the other target."""
    for index, claim in enumerate(scenario.claims):
        if claim.than is None:
            continue
        others = [(c.case_id, c.transform, c.params) for c in cases if c.target == claim.than]
        for case in (c for c in cases if c.target == claim.target):
            try:
                comparable_case(case.transform, case.params, others)
            except ValueError as exc:
                raise ScenarioError(f"claims[{index}]: {case.case_id} vs {claim.than}: {exc}") from exc


def load_scenario(path: str | Path | None = None) -> tuple[Scenario, Path]:
    """Load and validate a scenario; any problem is a ScenarioError naming file, key and what is allowed."""
    resolved = resolve_scenario_path(path)
    try:
        data = tomllib.loads(resolved.read_text())
    except OSError as exc:
        raise ScenarioError(f"{resolved}: cannot read scenario: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{resolved}: not valid TOML: {exc}") from exc
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{resolved}: {describe_validation_error(exc)}") from exc
    try:
        _check_than_claims(scenario, expand_cases(scenario))
    except ScenarioError as exc:
        raise ScenarioError(f"{resolved}: {exc}") from exc
    return scenario, resolved


def resolve_scenario_path(path: str | Path | None) -> Path:
    """A path as given, else a bundled scenario by name (works from a wheel, not only a checkout)."""
    candidate = Path(path) if path is not None else Path("scenarios") / DEFAULT_SCENARIO
    if candidate.is_file():
        return candidate
    bundled = resources.files("bench.scenarios") / candidate.name
    if bundled.is_file():
        return Path(str(bundled))
    available = ", ".join(
        sorted(p.name for p in resources.files("bench.scenarios").iterdir() if p.name.endswith(".toml"))
    )
    raise ScenarioError(f"{candidate}: scenario file not found (bundled scenarios: {available})")


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem as `key: what is wrong (allowed: ...)`."""
    error = exc.errors()[0]
    loc = error["loc"]
    key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[") or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{key}: unknown key (allowed: {', '.join(allowed)})"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message} (got {error.get('input')!r})" if error["type"] != "value_error" else f"{key}: {message}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return list(model.model_fields)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
