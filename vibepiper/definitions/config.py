"""Configuration overrides: values for assets' configuration parameters (the parameters
with a default value), given as `--set ASSET.PARAMETER=VALUE`, as
`Project.materialize(config={"asset": {"parameter": value}})` or under
`[tool.vibepiper.config.ASSET]` in pyproject.toml.

A value on the command line is read as a TOML value (`10`, `2.5`, `true`, `"10"`,
`[1, 2]`, `{a = 1}`); text that is not one is taken as it is, as a string (`eu`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from vibepiper.errors import UsageError, did_you_mean
from vibepiper.text import quoted

Config = Mapping[str, Mapping[str, Any]]  # asset -> configuration parameter -> value

SET_FORM = "ASSET.PARAMETER=VALUE"


def parse_value(text: str) -> Any:
    """`text` read as one TOML value, else `text` itself (a string)."""
    if "\n" in text or "\r" in text:  # one value, never a document of several keys
        return text
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(text: str) -> tuple[str, str, Any]:
    """`orders.min_amount=10` -> ("orders", "min_amount", 10)."""
    key, equals, value = text.partition("=")
    asset, dot, param = key.strip().partition(".")
    if not equals or not dot or not asset or not param.isidentifier():
        raise UsageError(
            f"--set {quoted(text)} is not of the form {SET_FORM}",
            "e.g. --set orders.min_amount=10",
        )
    return asset, param, parse_value(value.strip())


def from_sets(texts: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every `--set` as one configuration (a later one for the same parameter wins)."""
    config: dict[str, dict[str, Any]] = {}
    for text in texts:
        asset, param, value = parse_set(text)
        config.setdefault(asset, {})[param] = value
    return config


def merged(*layers: Config | None) -> dict[str, dict[str, Any]]:
    """The layers' values, each over the ones before it."""
    config: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for asset, values in (layer or {}).items():
            config.setdefault(asset, {}).update(values)
    return config


def checked(
    config: Any, params: Mapping[str, Iterable[str]], where: str = "configuration override"
) -> dict[str, dict[str, Any]]:
    """`config` as a plain dict, if it names only assets in `params` (asset -> its
    configuration parameters) and their parameters; else a UsageError naming the key
    (`where` says where it was given)."""
    if not isinstance(config, Mapping):
        raise UsageError(f"{where} is not a table of assets", 'give {"orders": {"min_amount": 10}}')
    result: dict[str, dict[str, Any]] = {}
    for asset, values in config.items():
        if not isinstance(values, Mapping):
            raise UsageError(
                f"{where} {asset} = {values!r} is not a table of parameters",
                "give each asset's values as a table: orders = {min_amount = 10}",
            )
        if asset not in params:
            raise UsageError(
                f"{where} {_key(asset, values)}: unknown asset {quoted(str(asset))}"
                f"{did_you_mean(str(asset), params)}",
                "run `vibepiper list` to see the assets",
            )
        known = list(params[asset])
        for param in values:
            if param not in known:
                raise UsageError(
                    f"{where} {asset}.{param}: {quoted(str(param))} is not a configuration "
                    f"parameter of asset '{asset}'{did_you_mean(str(param), known)}",
                    f"its configuration parameters are {', '.join(known)}"
                    if known
                    else "it has none (a parameter with a default value is configuration)",
                )
        result[asset] = dict(values)
    return result


def _key(asset: str, values: Mapping[str, Any]) -> str:
    first = next(iter(values), None)
    return asset if first is None else f"{asset}.{first}"
