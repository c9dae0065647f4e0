"""`WeightPruningGroup`: one group of kernels pruned together (INC's per-pruner settings), and mixed-config files.

`WeightPruningGroup` was called `PruningConfig` (still exported under that name by `ltp_tf.sparsity`); it prunes
weights, `ltp_tf.TokenPruningConfig` prunes tokens. Field names are the keys of INC's own `WeightPruningConfig`
(not `ltp_tf.sparsity.WeightPruningConfig`, the training flags), so a reference config reads unchanged:
`op_names` / `excluded_op_names` (regular expressions, `re.search` over variable paths such as
`.../transformer_layer_0/self_attention_layer/query/kernel`), `target_sparsity`, `pattern`, `pruning_type`
(the criterion), `pruning_scope`, `sparsity_decay_type`, `start_step`, `end_step`, `pruning_frequency`,
`max_sparsity_ratio_per_op`, `min_sparsity_ratio_per_op`.

A mixed-config file (JSON, or YAML with `.yaml`/`.yml`) holds shared settings at the top level and one entry per
group in `pruning_configs`; an entry's keys override the shared ones, which override the caller's defaults
(INC: "when the keywords appear in both global and local settings, the local settings are given priority"):

    {"target_sparsity": 0.8,
     "pruning_configs": [{"op_names": [".*query", ".*key", ".*value"], "pattern": "4x1", "pruning_scope": "global"},
                         {"op_names": [".*feedforward"], "pattern": "1x1", "pruning_scope": "local"}]}
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Mapping

from ltp_tf.sparsity.criteria import CRITERIA
from ltp_tf.sparsity.patterns import Pattern, parse_pattern
from ltp_tf.sparsity.schedules import SCHEDULES, SparsitySchedule, get_schedule
from ltp_tf.validation import check_number, check_one_of

SCOPES = ("global", "local")


@dataclasses.dataclass(frozen=True)
class WeightPruningGroup:
    """Settings of one pruning group (defaults: INC's).

    Attributes:
        op_names: regular expressions; a kernel is selected when one of them `re.search`es its variable path.
        excluded_op_names: regular expressions of kernels never selected.
        target_sparsity: fraction of the group's weights zeroed at the end, in [0, 1) (at most N/M for `"N:M"`).
        pattern: `"NxM"`, `"1xchannel"`, `"channelx1"` or `"N:M"` (`ltp_tf.sparsity.patterns`).
        pruning_type: the criterion: `"snip_momentum"`, `"snip"` or `"magnitude"`.
        pruning_scope: `"global"` (one ranking over the group's kernels) or `"local"` (each kernel ranked alone).
        sparsity_decay_type: `"exp"`, `"cos"`, `"linear"` or `"cube"`.
        start_step, end_step, pruning_frequency: the schedule's events (`ltp_tf.sparsity.schedules`).
        max_sparsity_ratio_per_op, min_sparsity_ratio_per_op: bounds on each kernel's sparsity
            (`ltp_tf.sparsity.masks`).
    """

    op_names: tuple[str, ...] = (".*",)
    excluded_op_names: tuple[str, ...] = ()
    target_sparsity: float = 0.9
    pattern: str = "4x1"
    pruning_type: str = "snip_momentum"
    pruning_scope: str = "global"
    sparsity_decay_type: str = "exp"
    start_step: int = 0
    end_step: int = 0
    pruning_frequency: int = 1
    max_sparsity_ratio_per_op: float = 0.98
    min_sparsity_ratio_per_op: float = 0.0

    def __post_init__(self) -> None:
        for name in ("op_names", "excluded_op_names"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, _regexes(name, value, allow_empty=name == "excluded_op_names"))
        parsed = parse_pattern(self.pattern)
        object.__setattr__(self, "pattern", parsed.text)
        check_one_of("pruning_type", self.pruning_type, CRITERIA)
        check_one_of("pruning_scope", self.pruning_scope, SCOPES)
        check_one_of("sparsity_decay_type", self.sparsity_decay_type, SCHEDULES)
        for name in ("target_sparsity", "max_sparsity_ratio_per_op", "min_sparsity_ratio_per_op"):
            check_number(name, getattr(self, name), "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
        if self.min_sparsity_ratio_per_op > self.max_sparsity_ratio_per_op:
            raise ValueError("`min_sparsity_ratio_per_op` must be <= max_sparsity_ratio_per_op "
                             f"({self.max_sparsity_ratio_per_op}). "
                             f"Received: min_sparsity_ratio_per_op={self.min_sparsity_ratio_per_op}")
        if self.target_sparsity > self.max_sparsity_ratio_per_op:
            raise ValueError("`target_sparsity` must be <= max_sparsity_ratio_per_op "
                             f"({self.max_sparsity_ratio_per_op}). Received: target_sparsity={self.target_sparsity}")
        if self.target_sparsity > parsed.max_sparsity:
            raise ValueError(f"`target_sparsity` must be <= N/M = {parsed.max_sparsity:g} for pattern "
                             f"{parsed.text!r}. Received: target_sparsity={self.target_sparsity}")
        if self.pruning_type != "magnitude" and self.start_step == 0 and self.end_step == 0:
            raise ValueError(f"`start_step` must be >= 1 for a one-shot `{self.pruning_type}` schedule: gradient "
                             "criteria need at least one training step before pruning. Received: start_step=0")
        self.schedule  # validates the steps

    @property
    def parsed_pattern(self) -> Pattern:
        return parse_pattern(self.pattern)

    @property
    def schedule(self) -> SparsitySchedule:
        """The sparsity schedule of this group."""
        return get_schedule(self.sparsity_decay_type, target_sparsity=self.target_sparsity,
                            start_step=self.start_step, end_step=self.end_step, frequency=self.pruning_frequency)

    def selects(self, path: str) -> bool:
        """Whether a kernel with variable path `path` is selected by `op_names` and not excluded."""
        return (any(re.search(p, path) for p in self.op_names)
                and not any(re.search(p, path) for p in self.excluded_op_names))

    def to_dict(self) -> dict[str, Any]:
        return settings_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "WeightPruningGroup":
        return cls(**settings_from_mapping(cls, values, "pruning setting", wrap_strings=False))


REGEX_FIELDS = ("op_names", "excluded_op_names")


def settings_to_dict(settings) -> dict[str, Any]:
    """A settings dataclass as a JSON-friendly dict (regular-expression tuples as lists)."""
    values = dataclasses.asdict(settings)
    for name in REGEX_FIELDS:
        values[name] = list(values[name])
    return values


def settings_from_mapping(cls, values: Mapping[str, Any], what: str, wrap_strings: bool) -> dict[str, Any]:
    """Constructor arguments for the settings dataclass `cls` from a mapping: unknown keys are an error
    naming them, regular-expression lists become tuples (and, with `wrap_strings`, a lone string a 1-tuple)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"Unknown {what}(s) {unknown}. Allowed: {sorted(names)}")
    values = dict(values)
    for name in REGEX_FIELDS:
        value = values.get(name)
        if isinstance(value, list):
            values[name] = tuple(value)
        elif wrap_strings and isinstance(value, str):
            values[name] = (value,)
    return values


def load_pruning_configs(path: str, defaults: Mapping[str, Any] | None = None) -> list[WeightPruningGroup]:
    """Reads a mixed-config file (see the module docstring) into one `WeightPruningGroup` per entry."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Pruning config file not found: {path!r}")
    with open(path, encoding="utf-8") as f:
        if path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(f)
        else:
            data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("pruning_configs"), list) or not data["pruning_configs"]:
        keys = sorted(data) if isinstance(data, dict) else []
        raise ValueError(f"{path}: expected a mapping with a non-empty list `pruning_configs` (plus optional shared "
                         f"settings). Received: {type(data).__name__} with keys {keys}")
    shared = {**(defaults or {}), **{k: v for k, v in data.items() if k != "pruning_configs"}}
    configs = []
    for i, entry in enumerate(data["pruning_configs"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: `pruning_configs[{i}]` must be a mapping. Received: {entry!r}")
        try:
            configs.append(WeightPruningGroup.from_dict({**shared, **entry}))
        except ValueError as error:
            raise ValueError(f"{path}: `pruning_configs[{i}]`: {error}") from None
    return configs


def _regexes(name: str, value: Any, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value) or (
            not value and not allow_empty):
        raise ValueError(f"`{name}` must be a {'' if allow_empty else 'non-empty '}list of regular expressions. "
                         f"Received: {name}={value!r}")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"`{name}` must be a list of valid regular expressions. Received: {name}={list(value)!r} "
                             f"({pattern!r}: {error})") from None
    return tuple(value)
