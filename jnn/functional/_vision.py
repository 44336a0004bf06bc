"""Resampling and rearranging images: interpolate, pixel_shuffle, channel_shuffle."""

from __future__ import annotations

__all__: list[str] = []
