"""Components: a name, parameters, input and output artifacts, and an executor function."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """An output artifact: its type, and whether partial work survives an interrupted execution.

    `resumable=False`: the executor writes into a fresh temporary folder that is renamed into place when
    it succeeds, and discarded otherwise. `resumable=True` (training): the executor writes into a
    `.partial` folder kept between attempts, so a rerun continues where the last one stopped; it is renamed
    into place only when the executor finishes.
    """

    type: str
    resumable: bool = False


@dataclasses.dataclass(frozen=True)
class ExecutionContext:
    """What an executor sees: its parameters, input folders, and the folders to write its outputs into."""

    component: str
    parameters: Mapping[str, Any]
    inputs: Mapping[str, str]
    input_properties: Mapping[str, Mapping[str, Any]]
    outputs: Mapping[str, str]
    beam_pipeline_args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExecutorResult:
    """Properties recorded per output artifact, and a message for the execution (e.g. why nothing was pushed)."""

    properties: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class Component:
    """One pipeline step.

    Attributes:
        name: unique name in the pipeline (also its folder under the pipeline root).
        executor: `ExecutionContext -> ExecutorResult`.
        parameters: JSON-serialisable settings; part of the cache key.
        inputs: input name -> `(upstream component, output name)`.
        external_inputs: input name -> a file or folder outside the pipeline (fingerprinted by content).
        outputs: output name -> `OutputSpec`.
    """

    name: str
    executor: Callable[[ExecutionContext], ExecutorResult]
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    external_inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    outputs: Mapping[str, OutputSpec] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """Components in execution order (each input must come from an earlier component)."""

    name: str
    components: tuple[Component, ...]

    def __post_init__(self) -> None:
        seen: dict[str, Component] = {}
        for component in self.components:
            if component.name in seen:
                raise ValueError(f"Component names must be unique. Received a second {component.name!r}")
            for input_name, (upstream, output) in component.inputs.items():
                if upstream not in seen or output not in seen[upstream].outputs:
                    raise ValueError(f"{component.name}.{input_name} needs {upstream}.{output}, which no earlier "
                                     f"component produces. Earlier: {sorted(seen)}")
            seen[component.name] = component
