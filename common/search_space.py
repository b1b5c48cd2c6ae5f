"""What a search samples: the domain's space, each chosen schedule's own parameters (declared
beside them, `Param.search` in common/schedule_registry.py), and the user's `--space`
overrides of bounds and choices.

`declare_trial(domain, cfg, overrides, hp)` is the one definition: called on an empty
`HyperParameters` it declares the whole space (with each schedule's parameters under
`conditional_scope("schedule", [name])`); called on a trial's hyperparameters it returns
that trial's config overrides.
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner

from common.domain import Domain
from common.errors import UserError
from common.schedule_registry import SPECS

SPACE_KEYS = frozenset({"min", "max", "values", "sampling", "step"})


def schedule_space() -> dict[str, tuple[tuple[str, float, float, str], ...]]:
    """{schedule: ((parameter, low, high, sampling), ...)} from the registry's `Param.search`.
    Hyperparameter names are "<schedule>/<parameter>"."""
    space = {spec.name: tuple((p.name, *p.search) for p in spec.params if p.search)
             for spec in SPECS.values()}
    return {name: params for name, params in space.items() if params}


SCHEDULE_SPACE = schedule_space()

def default_search_space(hp, cfg) -> dict:
    """For domains without their own space: the rate around the default, two schedules."""
    rate = cfg.learning_rate if isinstance(cfg.learning_rate, float) else 1e-3
    return {
        "learning_rate": hp.Float("learning_rate", rate / 100, rate * 10, sampling="log"),
        "schedule": hp.Choice("schedule", ["constant", "cosine"]),
    }



def parse_space_overrides(data: Any, source: str = "--space") -> dict[str, dict]:
    """Check `{"name": {"min": .., "max": ..} | {"values": [..]}}` and return it.

    Raises:
        UserError: not a mapping, an unknown key, empty choices, inverted bounds.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object of hyperparameter names. "
                        f"Received: {type(data).__name__}")
    checked: dict[str, dict] = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or not spec:
            raise UserError(f"{source}: {name} must map to an object such as "
                            '{"min": 1e-4, "max": 1e-1} or {"values": ["adam", "sgd"]}. '
                            f"Received: {name}={spec!r}")
        unknown = sorted(set(spec) - SPACE_KEYS)
        if unknown:
            raise UserError(f"{source}: {name} has unknown key(s) {', '.join(unknown)}. "
                            f"Expected some of: {', '.join(sorted(SPACE_KEYS))}")
        if "values" in spec and set(spec) & {"min", "max", "step", "sampling"}:
            raise UserError(f"{source}: {name} takes either values or min/max, not both. "
                            f"Received: {name}={spec!r}")
        if "values" in spec:
            values = spec["values"]
            if not isinstance(values, list) or not values:
                raise UserError(f"{source}: {name} needs a non-empty list of values. "
                                f"Received: values={values!r}")
            if len({type(v) for v in values}) > 1:
                raise UserError(f"{source}: {name} values must all have one type. "
                                f"Received: values={values!r}")
        if "min" in spec or "max" in spec:
            low, high = spec.get("min"), spec.get("max")
            for label, bound in (("min", low), ("max", high)):
                if bound is not None and (isinstance(bound, bool)
                                          or not isinstance(bound, (int, float))
                                          or not math.isfinite(bound)):
                    raise UserError(f"{source}: {name} {label} must be a finite number. "
                                    f"Received: {label}={bound!r}")
            if low is not None and high is not None and not low < high:
                raise UserError(f"{source}: {name} bounds are empty or inverted: min must be "
                                f"< max. Received: min={low}, max={high}")
        if spec.get("sampling", "linear") not in ("linear", "log", "reverse_log"):
            raise UserError(f"{source}: {name} sampling must be linear, log or reverse_log. "
                            f"Received: sampling={spec['sampling']!r}")
        checked[name] = dict(spec)
    return checked


class _OverriddenSpace:
    """HyperParameters whose bounds and choices the user's `--space` may replace.

    The domain's `search_space` keeps its one readable definition; this wrapper swaps in
    the user's numbers when the domain asks for a hyperparameter by name.
    """

    def __init__(self, hp, overrides: dict[str, dict]):
        self._hp = hp
        self._overrides = overrides

    def __getattr__(self, name):
        return getattr(self._hp, name)

    def _numeric(self, method, name, min_value, max_value, step=None, sampling="linear",
                 default=None, **kwargs):
        spec = self._overrides.get(name)
        if spec is None:
            return method(name, min_value, max_value, step=step, sampling=sampling,
                          default=default, **kwargs)
        if "values" in spec:
            return self._hp.Choice(name, spec["values"], **kwargs)
        low, high = spec.get("min", min_value), spec.get("max", max_value)
        if not low < high:
            raise UserError(f"--space: {name} bounds are empty or inverted after merging "
                            f"with the domain's ({min_value}, {max_value}): min={low}, "
                            f"max={high}")
        sampling = spec.get("sampling", sampling)
        if sampling in ("log", "reverse_log") and low <= 0:
            raise UserError(f"--space: {name} with {sampling} sampling needs min > 0. "
                            f"Received: min={low}")
        return method(name, low, high, step=spec.get("step", step), sampling=sampling,
                      **kwargs)

    def Float(self, name, min_value, max_value, **kwargs):  # noqa: N802 (Keras Tuner's name)
        return self._numeric(self._hp.Float, name, min_value, max_value, **kwargs)

    def Int(self, name, min_value, max_value, **kwargs):  # noqa: N802
        return self._numeric(self._hp.Int, name, min_value, max_value, **kwargs)

    def Boolean(self, name, default=False, **kwargs):  # noqa: N802
        if name in self._overrides:
            return self.Choice(name, [False, True], **kwargs)
        return self._hp.Boolean(name, default=default, **kwargs)

    def Fixed(self, name, value, **kwargs):  # noqa: N802
        if name in self._overrides:
            return self.Choice(name, [value], **kwargs)
        return self._hp.Fixed(name, value, **kwargs)

    def Choice(self, name, values, ordered=None, default=None, **kwargs):  # noqa: N802
        spec = self._overrides.get(name)
        if spec is not None:
            if "values" not in spec:
                raise UserError(f"--space: {name} is a choice; give it "
                                '{"values": [...]}, not bounds.')
            values, default = spec["values"], None
        return self._hp.Choice(name, values, ordered=ordered, default=default, **kwargs)


def _chosen_schedules(hp) -> list[str]:
    for item in hp.space:
        if item.name == "schedule" and not item.conditions:
            return list(getattr(item, "values", None) or [getattr(item, "value", None)])
    return []


def declare_trial(domain: Domain, cfg, overrides: dict[str, dict], hp) -> dict[str, Any]:
    """Config overrides for one trial: the domain's space, then each chosen schedule's
    own parameters under `conditional_scope("schedule", [name])`."""
    proxy = _OverriddenSpace(hp, overrides)
    space = domain.search_space or default_search_space
    values = dict(space(proxy, cfg))
    schedule_args: dict[str, float] = {}
    for schedule in _chosen_schedules(hp):
        params = SCHEDULE_SPACE.get(schedule, ())
        if not params:
            continue
        with hp.conditional_scope("schedule", [schedule]):
            for param, low, high, sampling in params:
                value = proxy.Float(f"{schedule}/{param}", low, high, sampling=sampling)
                if value is not None:
                    schedule_args[param] = value
    if "schedule" in values:
        inherited = dict(cfg.schedule_args) if values["schedule"] == cfg.schedule else {}
        values["schedule_args"] = {**inherited, **schedule_args}
    return values


def make_config(domain: Domain, values: dict[str, Any], smoke: bool):
    """The domain's config (or its smoke preset) with `values` on top."""
    cls = domain.config_cls
    return cls.smoke(**values) if smoke else cls(**values)


def declare_space(domain: Domain, cfg, fixed: dict[str, Any], overrides: dict[str, dict],
                  smoke: bool) -> keras_tuner.HyperParameters:
    """The whole space, checked: every `--space` name exists, the domain sets only config
    fields, and every unconditional choice makes a valid config on its own.

    Raises:
        UserError: naming the hyperparameter or choice at fault.
    """
    hp = keras_tuner.HyperParameters()
    try:
        values = declare_trial(domain, cfg, overrides, hp)
    except ValueError as error:  # Keras Tuner's own checks of a hyperparameter
        raise UserError(f"search space: {error}") from None
    names = [item.name for item in hp.space]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise UserError(f"--space: no hyperparameter {', '.join(map(repr, unknown))} in "
                        f"the {domain.name} search space. Expected some of: "
                        f"{', '.join(names)}")
    fields = set(cfg.to_dict())
    bad = sorted(set(values) - fields)
    if bad:
        raise UserError(f"{domain.name} search space sets {', '.join(bad)}, which "
                        f"{type(cfg).__name__} does not have.")
    for item in hp.space:  # every choice must make a valid config on its own
        if item.name in fields and hasattr(item, "values") and not item.conditions:
            for choice in item.values:
                values = {**fixed, item.name: choice}
                if item.name == "schedule" and choice != cfg.schedule:
                    values["schedule_args"] = {}  # the fixed args belong to another schedule
                try:
                    make_config(domain, values, smoke)
                except ValueError as error:
                    raise UserError(f"search space {item.name}={choice!r}: {error}") from None
    return hp
