"""What the Azure Functions Python worker checks when it indexes the app, run without a host.

The Python 3.11 language worker (``azure_functions_worker``, shipped inside the Functions host
image, not installable from PyPI: the ``azure-functions-worker`` name there is a 2020 leftover,
and the ``azure-functions-runtime`` package that carries the same code for the new worker requires
Python >= 3.13) indexes a v2-model app when the host sends ``FunctionsMetadataRequest``:

* ``dispatcher.py`` ``Dispatcher._handle__functions_metadata_request`` -> ``load_function_metadata``
  -> ``index_functions``; any exception there becomes ``StatusResult.Failure`` for the *whole*
  metadata response, so no function of the app loads.
* ``loader.py`` ``index_function_app``: imports ``function_app`` and looks for exactly one
  ``azure.functions.FunctionRegister`` among the module's attributes, then ``app.get_functions()``.
* ``loader.py`` ``process_indexed_function``: for each function, ``Registry.add_indexed_function``,
  ``build_binding_protos`` (name -> type, dataType, direction), ``build_retry_protos`` (strategy,
  ``int(max_retry_count)``, intervals parsed as ``%H:%M:%S``) and ``get_fx_raw_bindings`` (the
  function.json-shaped JSON the host reads: ``indexed_function.get_raw_bindings()``).
* ``functions.py`` ``Registry.add_indexed_function``: ``typing.get_type_hints`` on the user
  function, ``validate_binding_direction`` (no ``inout``; ``$return`` must be ``out``),
  ``get_explicit_and_implicit_return``, ``is_context_required`` (an unbound ``context`` parameter
  must be annotated with a class named ``Context``), ``validate_function_params`` (Python
  parameters == bound names; each annotation must be a class or a *typing* generic
  (``_thirdparty/typing_inspect.is_generic_type``: ``typing.List[X]`` is, ``list[X]`` is not);
  ``Out`` only on ``out`` bindings; ``str``/``bytes`` on a binding without implicit output uses the
  ``generic`` converter; then the converter's ``check_input_type_annotation`` /
  ``check_output_type_annotation``), ``get_function_return_type`` (``$return`` annotation must be a
  class accepted by the ``$return`` binding's ``check_output_type_annotation``).
* ``bindings/meta.py`` ``get_binding`` / ``check_input_type_annotation`` /
  ``check_output_type_annotation`` / ``has_implicit_output``: converter from
  ``azure.functions.get_binding_registry()``, else ``bindings/generic.py`` ``GenericBinding``
  (``str``/``bytes`` in; ``str``/``bytes``/``bytearray`` out; implicit output for every type but
  ``durableClient``); ``httpTrigger`` / ``http`` go through the HTTP-streaming extension only when
  it is installed and enabled (``http_v2.py``), which this app does not use.

This module re-implements those checks (no worker code is copied) and runs them on ``function_app``,
then proves they catch the ``list[func.EventHubEvent]`` regression that stopped the app loading.
Read against Azure/azure-functions-python-worker 4.34 (``azure_functions_worker/``) and the newer
``workers/azure_functions_worker/functions.py`` (same checks) and ``azure-functions-runtime``
1.3.0.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import json
import re
import sys
import time
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest

ROOT = Path(__file__).resolve().parents[2]

# azure.functions.decorators.core.BindingDirection / DataType values == the proto enums the worker
# compares with (FunctionRpc.proto BindingInfo.Direction, BindingInfo.DataType).
DIRECTION_IN, DIRECTION_OUT, DIRECTION_INOUT = 0, 1, 2
DATA_TYPES = {None: "undefined", 0: "undefined", 1: "string", 2: "binary", 3: "stream"}

# App settings that must NOT be needed to import the app (it is imported by tools and tests too),
# plus the variables that would make the app think it runs inside the host.
HOST_MARKERS = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_DIRECTORY",
    "FUNCTIONS_APPLICATION_DIRECTORY",
    "AzureWebJobsScriptRoot",
    "WEBSITE_SITE_NAME",
    "CONTAINER_NAME",
)


class WorkerLoadError(AssertionError):
    """What the worker's ``FunctionLoadError`` (or any exception while indexing) would be."""


# --- bindings/meta.py: which converter checks an annotation --------------------------------------


def _converter(binding_type: str) -> Any:
    """``bindings/meta.py`` ``get_binding``: the SDK's converter, or None for GenericBinding."""
    return func.get_binding_registry().get(binding_type)


def _is_subclass(pytype: Any, bases: tuple[type, ...]) -> bool:
    return isinstance(pytype, type) and issubclass(pytype, bases)


def has_implicit_output(binding_type: str) -> bool:
    """``bindings/meta.py`` ``has_implicit_output`` (GenericBinding: all but durableClient)."""
    converter = _converter(binding_type)
    if converter is None:
        return binding_type != "durableClient"
    return bool(getattr(converter, "has_implicit_output", lambda: False)())


def check_input_annotation(binding_type: str, pytype: Any) -> bool:
    """``bindings/meta.py`` ``check_input_type_annotation`` (non-deferred, HTTP streaming off).

    A converter that raises (``issubclass`` on a non-class) fails the worker's request as well.
    """
    converter = _converter(binding_type)
    try:
        if converter is None:
            return _is_subclass(pytype, (str, bytes))
        return bool(converter.check_input_type_annotation(pytype))
    except TypeError:
        return False


def check_output_annotation(binding_type: str, pytype: Any) -> bool:
    """``bindings/meta.py`` ``check_output_type_annotation``."""
    converter = _converter(binding_type)
    try:
        if converter is None:
            return _is_subclass(pytype, (str, bytes, bytearray))
        return bool(converter.check_output_type_annotation(pytype))
    except TypeError:
        return False


def _is_typing_generic(annotation: Any) -> bool:
    """``_thirdparty/typing_inspect.is_generic_type`` on Python >= 3.9.

    True for ``Generic`` subclasses and for *typing* aliases (``typing.List[X]``, ``Out[X]``,
    ``typing.Iterable[X]``), false for ``Union``/``Tuple``/``Callable``/``ClassVar`` and for PEP 585
    ``types.GenericAlias`` such as ``list[X]`` (not a ``typing._GenericAlias``).
    """
    if isinstance(annotation, type):
        return issubclass(annotation, typing.Generic)  # type: ignore[arg-type]
    alias_types = tuple(
        t
        for t in (
            getattr(typing, "_GenericAlias", None),
            getattr(typing, "_SpecialGenericAlias", None),
        )
        if t is not None
    )
    if not isinstance(annotation, alias_types):
        return False
    origin = getattr(annotation, "__origin__", None)
    return origin not in (typing.Union, tuple, typing.ClassVar, collections.abc.Callable)


def _is_out(annotation: Any) -> bool:
    """``functions.py`` ``validate_function_params``: is it ``azure.functions.Out[...]``?"""
    if _is_typing_generic(annotation):
        origin = typing.get_origin(annotation)
        candidate = origin if origin is not None else annotation
    else:
        candidate = annotation
    return isinstance(candidate, type) and candidate.__name__ == "Out"


# --- functions.py Registry.add_indexed_function ---------------------------------------------------


@dataclass
class LoadedFunction:
    """What the worker keeps per function (``functions.py`` ``FunctionInfo``) and sends the host."""

    name: str
    function_id: str
    requires_context: bool
    input_types: dict[str, tuple[str, Any]] = field(default_factory=dict)
    output_types: dict[str, tuple[str, Any]] = field(default_factory=dict)
    return_binding: str | None = None
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw_bindings: list[dict[str, Any]] = field(default_factory=list)
    retry: dict[str, Any] | None = None


def _fail(name: str, message: str) -> typing.NoReturn:
    raise WorkerLoadError(f"cannot load the {name} function: {message}")


def load_indexed_function(function: Any) -> LoadedFunction:
    """``functions.py`` ``add_indexed_function`` and ``loader.py`` ``process_indexed_function``."""
    user_function = function.get_user_function()
    name = function.get_function_name()
    params = dict(inspect.signature(user_function).parameters)
    hints = typing.get_type_hints(user_function)  # a NameError here fails the worker too

    bound: dict[str, Any] = {}
    explicit_return = False
    return_binding: str | None = None
    for binding in function.get_bindings():
        # validate_binding_direction
        if binding.direction == DIRECTION_INOUT:
            _fail(name, '"inout" bindings are not supported')
        if binding.name == "$return" and binding.direction != DIRECTION_OUT:
            _fail(name, '"$return" binding must have direction set to "out"')
        # get_explicit_and_implicit_return / get_return_binding
        if binding.name == "$return":
            if not explicit_return:
                return_binding = binding.type
            explicit_return = True
        else:
            bound[binding.name] = binding
            if not explicit_return and has_implicit_output(binding.type):
                return_binding = binding.type

    # is_context_required
    requires_context = False
    if "context" in params and "context" not in bound:
        requires_context = True
        params.pop("context")
        if "context" in hints:
            anno = hints["context"]
            if not isinstance(anno, type) or anno.__name__ != "Context":
                _fail(name, f"the context parameter must be azure.functions.Context, got {anno!r}")

    # validate_function_params
    if set(params) - set(bound):
        _fail(name, f"parameters not bound to any binding: {sorted(set(params) - set(bound))}")
    if set(bound) - set(params):
        _fail(name, f"bindings with no Python parameter: {sorted(set(bound) - set(params))}")

    loaded = LoadedFunction(
        name=name,
        function_id=str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
        requires_context=requires_context,
        return_binding=return_binding,
    )
    for param_name in params:
        binding = bound[param_name]
        has_anno = param_name in hints
        anno = hints.get(param_name)
        param_out = has_anno and _is_out(anno)
        binding_out = binding.direction == DIRECTION_OUT
        pytype = anno
        if param_out:
            args = typing.get_args(anno)
            if len(args) != 1:
                _fail(name, f"binding {param_name} has invalid Out annotation {anno!r}")
            pytype = args[0]
        if has_anno and not isinstance(pytype, type) and not _is_typing_generic(pytype):
            _fail(name, f"binding {param_name} has invalid non-type annotation {anno!r}")
        if binding_out and has_anno and not param_out:
            _fail(name, f"binding {param_name} is out, but its annotation is not func.Out")
        if not binding_out and param_out:
            _fail(name, f"binding {param_name} is in, but its annotation is func.Out")
        if has_anno and pytype in (str, bytes) and not has_implicit_output(binding.type):
            checked_as = "generic"
        else:
            checked_as = binding.type
        if has_anno:
            ok = (
                check_output_annotation(checked_as, pytype)
                if param_out
                else check_input_annotation(checked_as, pytype)
            )
            if not ok:
                _fail(
                    name,
                    f'binding {param_name!r} of type "{binding.type}" '
                    f"(dataType {DATA_TYPES.get(binding.data_type, binding.data_type)}) "
                    f"does not accept the Python annotation {anno!r}",
                )
        (loaded.output_types if binding_out else loaded.input_types)[param_name] = (
            checked_as,
            pytype,
        )

    # get_function_return_type
    if explicit_return and "return" in hints:
        anno = hints["return"]
        if _is_out(anno):
            _fail(name, "return annotation should not be azure.functions.Out")
        if not isinstance(anno, type):
            _fail(name, f"has invalid non-type return annotation {anno!r}")
        assert return_binding is not None
        if not check_output_annotation(return_binding, anno):
            _fail(name, f'return annotation {anno!r} does not match binding "{return_binding}"')

    # loader.py build_binding_protos / get_fx_raw_bindings / build_retry_protos
    for binding in function.get_bindings():
        loaded.bindings[binding.name] = {
            "type": binding.type,
            "direction": binding.direction,
            "data_type": binding.data_type,
        }
    loaded.raw_bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
    loaded.retry = build_retry(name, function)
    return loaded


def _seconds(name: str, value: Any) -> int:
    """``loader.py`` ``convert_to_seconds``: ``time.strptime(value, '%H:%M:%S')``."""
    if not isinstance(value, str):
        _fail(name, f"retry interval {value!r} is not a 'HH:MM:SS' string")
    try:
        parsed = time.strptime(value, "%H:%M:%S")
    except ValueError:
        _fail(name, f"retry interval {value!r} is not 'HH:MM:SS'")
    return parsed.tm_hour * 3600 + parsed.tm_min * 60 + parsed.tm_sec


def build_retry(name: str, function: Any) -> dict[str, Any] | None:
    """``loader.py`` ``build_retry_protos``: the RpcRetryOptions the host receives."""
    settings = function.get_settings_dict("retry_policy")
    if not settings:
        return None
    strategy = settings.get("strategy")
    try:
        count = int(settings.get("max_retry_count"))
    except (TypeError, ValueError):
        _fail(name, f"retry max_retry_count {settings.get('max_retry_count')!r} is not an int")
    if strategy == "fixed_delay":
        return {
            "strategy": strategy,
            "max_retry_count": count,
            "delay_interval": _seconds(name, settings.get("delay_interval")),
        }
    # Anything else is sent as a variable-interval (exponential) policy; the host rejects unknown
    # strategies, so require the one it knows.
    if strategy != "exponential_backoff":
        _fail(name, f"unknown retry strategy {strategy!r}")
    return {
        "strategy": strategy,
        "max_retry_count": count,
        "minimum_interval": _seconds(name, settings.get("minimum_interval")),
        "maximum_interval": _seconds(name, settings.get("maximum_interval")),
    }


def index_module(module: ModuleType) -> list[LoadedFunction]:
    """``loader.py`` ``index_function_app`` then ``process_indexed_function`` for every function."""
    registers = [
        attr
        for attr in module.__dir__()
        if isinstance(getattr(module, attr, None), func.FunctionRegister)
    ]
    if len(registers) != 1:
        raise WorkerLoadError(f"expected one top-level FunctionApp, found {registers}")
    app = getattr(module, registers[0])
    loaded = [load_indexed_function(function) for function in app.get_functions()]
    ids = [item.function_id for item in loaded]
    assert len(set(ids)) == len(ids), "two functions share a name"
    return loaded


def index_app(app: func.FunctionApp) -> list[LoadedFunction]:
    """Index a throwaway app the same way (for the regression tests)."""
    module = ModuleType("throwaway_function_app")
    module.app = app  # type: ignore[attr-defined]
    return index_module(module)


# --- the real app ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_module() -> Iterator[ModuleType]:
    """``function_app`` imported afresh with no app setting and no host marker set."""
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))
    names = set(sample["Values"]) | set(HOST_MARKERS)
    previous = sys.modules.pop("function_app", None)
    with pytest.MonkeyPatch.context() as patch:
        for name in names:
            patch.delenv(name, raising=False)
        module = importlib.import_module("function_app")
    try:
        yield module
    finally:
        if previous is not None:
            sys.modules["function_app"] = previous


@pytest.fixture(scope="module")
def index_outcome(app_module: ModuleType) -> dict[str, LoadedFunction] | WorkerLoadError:
    # Once: azure-functions 1.26.0 ``FunctionApp.get_functions`` keeps the names it has seen and
    # raises "does not have a unique function name" if called a second time on the same app.
    try:
        return {item.name: item for item in index_module(app_module)}
    except WorkerLoadError as exc:
        return exc


@pytest.fixture
def indexed(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError,
) -> dict[str, LoadedFunction]:
    """The indexed app; a load failure fails the test (not an error in the fixture)."""
    return index_outcome if isinstance(index_outcome, dict) else {}


def _require_loaded(outcome: dict[str, LoadedFunction] | WorkerLoadError) -> None:
    if isinstance(outcome, WorkerLoadError):
        pytest.fail(f"the Python worker would not load function_app.py: {outcome}", pytrace=False)


def _setting_refs(value: str) -> list[str]:
    return re.findall(r"%([^%]+)%", value)


def test_imports_outside_the_host_and_registers_every_function(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError, indexed: dict[str, LoadedFunction]
) -> None:
    _require_loaded(index_outcome)
    assert sorted(indexed) == ["health", "ingest_apim_logs", "ingestion_status"]


def test_ingestion_status_timer_is_what_the_host_reads(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError, indexed: dict[str, LoadedFunction]
) -> None:
    _require_loaded(index_outcome)
    loaded = indexed["ingestion_status"]
    (binding,) = loaded.raw_bindings
    assert binding["type"] == "timerTrigger"
    assert binding["direction"] == "IN"
    assert binding["name"] == "timer"
    # Six fields (seconds first), as the host's NCRONTAB reads them: every five minutes.
    assert binding["schedule"] == "0 */5 * * * *"
    assert len(binding["schedule"].split()) == 6
    assert binding.get("runOnStartup") in (False, None)


def test_every_function_passes_the_workers_load_checks(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError, indexed: dict[str, LoadedFunction]
) -> None:
    # index_module raises WorkerLoadError on the first check the worker would fail.
    _require_loaded(index_outcome)
    for loaded in indexed.values():
        for param, (checked_as, pytype) in loaded.input_types.items():
            assert check_input_annotation(checked_as, pytype), (loaded.name, param)


def test_ingest_function_metadata_is_what_the_host_reads(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError,
    indexed: dict[str, LoadedFunction],
    app_module: ModuleType,
) -> None:
    _require_loaded(index_outcome)
    loaded = indexed["ingest_apim_logs"]
    assert loaded.requires_context
    assert list(loaded.input_types) == ["events"]
    assert loaded.input_types["events"][0] == "eventHubTrigger"
    assert loaded.return_binding is None
    assert not loaded.output_types
    assert loaded.bindings == {
        "events": {"type": "eventHubTrigger", "direction": DIRECTION_IN, "data_type": 2}
    }
    assert loaded.raw_bindings == [
        {
            "direction": "IN",
            "dataType": "BINARY",
            "type": "eventHubTrigger",
            "name": "events",
            "connection": "EventHubConnection",
            "eventHubName": "%EVENTHUB_NAME%",
            "cardinality": "MANY",
            "consumerGroup": "%EVENTHUB_CONSUMER_GROUP%",
        }
    ]
    assert loaded.retry == {
        "strategy": "exponential_backoff",
        "max_retry_count": app_module.MAX_RETRIES,
        "minimum_interval": 10,
        "maximum_interval": 15 * 60,
    }
    assert loaded.retry["minimum_interval"] <= loaded.retry["maximum_interval"]


def test_health_function_metadata_is_what_the_host_reads(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError, indexed: dict[str, LoadedFunction]
) -> None:
    _require_loaded(index_outcome)
    loaded = indexed["health"]
    assert not loaded.requires_context
    assert loaded.input_types["req"][0] == "httpTrigger"
    assert loaded.return_binding == "http"  # checked with HttpResponseConverter
    assert loaded.retry is None
    raw = {binding["name"]: binding for binding in loaded.raw_bindings}
    assert raw["req"]["type"] == "httpTrigger"
    assert raw["req"]["direction"] == "IN"
    assert raw["req"]["authLevel"] == "FUNCTION"
    assert raw["req"]["route"] == "health"
    assert raw["$return"] == {"direction": "OUT", "type": "http", "name": "$return"}


def test_setting_references_and_connections_exist_in_the_sample_settings(
    index_outcome: dict[str, LoadedFunction] | WorkerLoadError, indexed: dict[str, LoadedFunction]
) -> None:
    """The host resolves %NAME% from app settings and ``connection`` as a setting prefix."""
    _require_loaded(index_outcome)
    values = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    for loaded in indexed.values():
        for binding in loaded.raw_bindings:
            for key, value in binding.items():
                if isinstance(value, str):
                    for ref in _setting_refs(value):
                        assert ref in values, (loaded.name, key, ref)
            connection = binding.get("connection")
            if connection is not None:
                assert "%" not in connection, "connection names a setting (prefix), not %ref%"
                assert connection in values or any(
                    name.startswith(f"{connection}__") for name in values
                ), (loaded.name, connection)


# --- the regression, on throwaway apps ------------------------------------------------------------


def _batch_app(handler: Callable[..., None]) -> func.FunctionApp:
    app = func.FunctionApp()
    app.function_name("batch")(
        app.event_hub_message_trigger(
            arg_name="events",
            event_hub_name="hub",
            connection="EventHubConnection",
            cardinality="many",
            data_type="binary",
        )(handler)
    )
    return app


def _builtin_list(events: list[func.EventHubEvent], context: func.Context) -> None:
    """What function_app.py had: PEP 585 ``list[...]``."""


def _typing_list(events: typing.List[func.EventHubEvent], context: func.Context) -> None:  # noqa: UP006
    """What the worker accepts for a batch."""


def _unbound_param(events: typing.List[func.EventHubEvent], extra: int) -> None:  # noqa: UP006
    """A parameter no binding feeds."""


def _bad_context(events: typing.List[func.EventHubEvent], context: dict[str, Any]) -> None:  # noqa: UP006
    """``context`` annotated with something other than func.Context."""


def test_sdk_converter_rejects_pep585_list() -> None:
    """The root cause, straight from azure-functions' EventHubTriggerConverter."""
    from azure.functions.eventhub import EventHubTriggerConverter

    assert not EventHubTriggerConverter.check_input_type_annotation(list[func.EventHubEvent])
    assert EventHubTriggerConverter.check_input_type_annotation(
        typing.List[func.EventHubEvent]  # noqa: UP006
    )


def test_batch_trigger_annotated_builtin_list_fails_to_load() -> None:
    with pytest.raises(WorkerLoadError, match="invalid non-type annotation"):
        index_app(_batch_app(_builtin_list))


def test_batch_trigger_annotated_typing_list_loads() -> None:
    (loaded,) = index_app(_batch_app(_typing_list))
    assert loaded.input_types["events"][0] == "eventHubTrigger"
    assert loaded.requires_context


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (_unbound_param, "not bound to any binding"),
        (_bad_context, "context parameter"),
    ],
)
def test_other_load_failures_are_caught(handler: Callable[..., None], message: str) -> None:
    with pytest.raises(WorkerLoadError, match=message):
        index_app(_batch_app(handler))


def test_http_return_annotation_is_checked() -> None:
    app = func.FunctionApp()

    @app.route(route="x")
    def bad(req: func.HttpRequest) -> dict[str, Any]:
        return {}

    with pytest.raises(WorkerLoadError, match="return annotation"):
        index_app(app)


def test_two_function_apps_in_one_module_fail() -> None:
    module = ModuleType("two_apps")
    module.a = func.FunctionApp()  # type: ignore[attr-defined]
    module.b = func.FunctionApp()  # type: ignore[attr-defined]
    with pytest.raises(WorkerLoadError, match="one top-level FunctionApp"):
        index_module(module)
