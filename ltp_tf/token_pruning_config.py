"""`TokenPruningConfig`: the validated token-pruning settings, LTP's `config.json` keys.

The field names follow the original LTP code (`prune_mode`, `masking_mode`, `final_token_threshold`,
`token_keep_rate`, `scoring_mode`, `temperature`); its training flag `--lambda` is the field
`mask_loss_weight` here (`lambda` is a Python keyword) and is accepted under either name when read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Mapping

from ltp_tf.validation import check_int_at_least, check_number, check_one_of

PRUNE_MODES = ("none", "topk", "absolute_threshold")
MASKING_MODES = ("soft", "hard")
SCORING_MODES = ("mean", "length_normalized")
SOFT_MASKS = ("sigmoid", "straight_through")

# Keys of an LTP checkpoint's `config.json` that map onto fields, with their aliases.
_ALIASES = {"lambda": "mask_loss_weight"}


@dataclasses.dataclass(frozen=True)
class TokenPruningConfig:
    """How an encoder prunes tokens.

    Attributes:
        prune_mode: `"none"` (dense), `"topk"` (keep-rate schedule) or `"absolute_threshold"`
            (per-layer thresholds, manual or learned).
        masking_mode: `"soft"` (threshold search: the block output is multiplied by
            `sigmoid((score - threshold) / temperature)` while training) or `"hard"` (tokens under the
            threshold are removed from all later layers). Soft needs `prune_mode="absolute_threshold"`.
            Inference always prunes hard, as LTP evaluates.
        final_token_threshold: threshold of the last layer; layer `i` of `L` starts at
            `final_token_threshold * i / L`. In `[0, 1)`.
        token_keep_rate: fraction of each sentence's tokens the last layer keeps in `topk` mode. At most 1;
            negative values are allowed (the schedule is floored at 0.01, as in LTP).
        token_keep_rates: `topk` mode with a rate per layer instead of LTP's schedule: one fraction in
            (0, 1] per encoder layer, e.g. another model's measured kept ratios (top-k at equal FLOPs). None:
            the schedule ending at `token_keep_rate`.
        scoring_mode: `"mean"`: attention received, summed over heads and real queries, divided by
            `heads * score_reference_length` (LTP's scale with inputs padded to 128, but independent of the
            batch's padding); `"length_normalized"`: divided by `heads * real queries` instead, so a
            sentence's scores sum to one.
        temperature: soft-mask temperature T, > 0 (LTP default 1e-3).
        mask_loss_weight: lambda, the weight of the mask regulariser `lambda * sum_layers mean(mask)`, >= 0.
        score_reference_length: the sequence length the `"mean"` scores are normalised by (LTP pads to 128).
        soft_mask: how soft training masks: `"sigmoid"` (LTP: every token goes on, scaled by its sigmoid
            mask) or `"straight_through"` (the hard mask in the forward pass, as evaluation prunes, with the
            sigmoid's gradient for the thresholds).
    """

    prune_mode: str = "none"
    masking_mode: str = "hard"
    final_token_threshold: float = 0.01
    token_keep_rate: float = 1.0
    token_keep_rates: tuple[float, ...] | None = None
    scoring_mode: str = "mean"
    temperature: float = 1e-3
    mask_loss_weight: float = 0.1
    score_reference_length: int = 128
    soft_mask: str = "sigmoid"

    def __post_init__(self) -> None:
        check_one_of("prune_mode", self.prune_mode, PRUNE_MODES)
        check_one_of("masking_mode", self.masking_mode, MASKING_MODES)
        check_one_of("scoring_mode", self.scoring_mode, SCORING_MODES)
        check_one_of("soft_mask", self.soft_mask, SOFT_MASKS)
        check_number("final_token_threshold", self.final_token_threshold, "a number in [0, 1)",
                     lambda v: 0.0 <= v < 1.0)
        check_number("token_keep_rate", self.token_keep_rate, "a finite number <= 1",
                     lambda v: math.isfinite(v) and v <= 1.0)
        if self.token_keep_rates is not None:
            rates = tuple(self.token_keep_rates)
            object.__setattr__(self, "token_keep_rates", rates)  # a JSON list reads back as the same config
            valid = [isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 < v <= 1.0
                     for v in rates]
            if not rates or not all(valid):
                raise ValueError("`token_keep_rates` must be one rate in (0, 1] per layer, or None. "
                                 f"Received: token_keep_rates={rates}")
        check_number("temperature", self.temperature, "a finite number > 0",
                     lambda v: math.isfinite(v) and v > 0.0)
        check_number("mask_loss_weight", self.mask_loss_weight, "a finite number >= 0",
                     lambda v: math.isfinite(v) and v >= 0.0)
        check_int_at_least("score_reference_length", self.score_reference_length, 1)
        if self.masking_mode == "soft" and self.prune_mode != "absolute_threshold":
            raise ValueError("`masking_mode` 'soft' needs prune_mode='absolute_threshold' (soft masks "
                             "relax learned thresholds). Received: masking_mode='soft', "
                             f"prune_mode={self.prune_mode!r}")

    @property
    def learned(self) -> bool:
        """Whether thresholds train (soft threshold search)."""
        return self.prune_mode == "absolute_threshold" and self.masking_mode == "soft"

    def active_settings(self) -> dict[str, Any]:
        """The settings this mode reads (a dense config is just its mode; soft adds T and lambda).

        Checkpoint fingerprints use this, so a default that a mode ignores can change without
        invalidating finished stages.
        """
        if self.prune_mode == "none":
            return {"prune_mode": "none"}
        if self.prune_mode == "topk":
            rates = "token_keep_rate" if self.token_keep_rates is None else "token_keep_rates"
            names = ("prune_mode", rates, "scoring_mode", "score_reference_length")
        else:
            names = ("prune_mode", "masking_mode", "final_token_threshold", "scoring_mode", "score_reference_length")
            if self.learned:
                names += ("temperature", "mask_loss_weight")
                if self.soft_mask != "sigmoid":  # listed only when changed: older fingerprints stay valid
                    names += ("soft_mask",)
        return {name: getattr(self, name) for name in names}

    def replace(self, **changes: Any) -> "TokenPruningConfig":
        """A validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], ignore_unknown: bool = False) -> "TokenPruningConfig":
        """Builds a config from a mapping; `lambda` is read as `mask_loss_weight`.

        With `ignore_unknown=True`, keys that are not pruning settings (a model `config.json`'s
        `hidden_size` and the like) are skipped; otherwise they are an error.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            name = _ALIASES.get(key, key)
            if name in names:
                kwargs[name] = value
            elif not ignore_unknown:
                raise ValueError(f"Unknown token-pruning setting {key!r}. Allowed: {sorted(names | set(_ALIASES))}")
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "TokenPruningConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_checkpoint_config(cls, path: str | os.PathLike) -> "TokenPruningConfig":
        """Reads the pruning keys of an LTP checkpoint's `config.json` (a file or the folder holding it)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No checkpoint config at {path!r}: expected a `config.json` file.")
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f), ignore_unknown=True)
