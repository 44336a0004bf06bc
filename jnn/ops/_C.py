"""The few ``torch._C`` functions that model code calls directly (torchvision's usage logging, tracing checks).

>>> _log_api_usage_once("torchvision.models.resnet.ResNet") is None
True
>>> _get_tracing_state() is None
True
"""

from __future__ import annotations

__all__ = ["_log_api_usage_once", "_get_tracing_state"]


def _log_api_usage_once(event: str) -> None:
    """torch's usage-logging hook: nothing is logged (torch itself logs nothing by default either)."""
    return None


def _get_tracing_state() -> None:
    """torch's JIT tracer state: there is no torch tracer here, so never tracing."""
    return None
