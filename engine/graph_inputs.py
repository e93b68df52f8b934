"""The integer inputs of a CUDA-graph step: fixed device buffers, filled with one copy.

A graph replays fixed device addresses, so a step's token ids, positions, slots, lengths
and block tables must be copied into buffers the graph was captured on. Copying each
from its own freshly pinned host tensor costs a pinned allocation, a host-to-device copy
and a device-to-device copy apiece; here every field of one dtype is a view into one
device buffer with a persistent pinned host mirror, so a step writes its values into the
mirror and uploads each dtype with a single asynchronous copy.

The mirror is rewritten by the next step, so an upload still in flight must finish first:
``host`` waits for the previous upload's event (normally long done: the step that used
it synchronised on its sampled tokens).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

__all__ = ["Field", "StaticInputs", "flat_rows"]

# name -> (dtype, shape, fill value)
Field = tuple[torch.dtype, tuple[int, ...], int]


class StaticInputs:
    """Named integer buffers on ``device`` with host mirrors (the same tensors on CPU).

    Args:
        device: where the graph runs.
        fields: each buffer's dtype, shape and initial value, in buffer order (put the
            big ones, e.g. block tables, last: an upload copies a prefix).
    """

    def __init__(self, device: torch.device, fields: Mapping[str, Field]) -> None:
        self.device = device
        sizes: dict[torch.dtype, int] = {}
        self._spans: dict[str, tuple[torch.dtype, int, tuple[int, ...]]] = {}
        for name, (dtype, shape, _) in fields.items():
            # Each field starts 16-byte aligned: Triton specializes kernels on pointer
            # alignment, so a misaligned view would compile (and capture) another variant.
            align = max(1, 16 // torch.empty(0, dtype=dtype).element_size())
            start = -(-sizes.get(dtype, 0) // align) * align
            self._spans[name] = (dtype, start, shape)
            sizes[dtype] = start + math.prod(shape)
        self._device = {dt: torch.empty(n, dtype=dt, device=device) for dt, n in sizes.items()}
        cuda = device.type == "cuda"
        self._host = {
            dt: torch.empty(n, dtype=dt, pin_memory=True) if cuda else self._device[dt]
            for dt, n in sizes.items()
        }
        self._uploaded: torch.cuda.Event | None = None
        for name, (_, _, fill) in fields.items():
            self.host(name).fill_(fill)
        self.upload()

    def _view(self, buffers: dict[torch.dtype, torch.Tensor], name: str) -> torch.Tensor:
        dtype, start, shape = self._spans[name]
        return buffers[dtype][start : start + math.prod(shape)].view(shape)

    def device_view(self, name: str) -> torch.Tensor:
        """The device buffer a graph reads (full shape)."""
        return self._view(self._device, name)

    def host(self, name: str) -> torch.Tensor:
        """The host mirror of ``name``, safe to write (waits for the last upload)."""
        if self._uploaded is not None:
            self._uploaded.synchronize()
            self._uploaded = None
        return self._view(self._host, name)

    def upload(self, used: Mapping[str, int] | None = None) -> None:
        """Copy the host mirrors to the device (asynchronously on CUDA).

        Args:
            used: elements in use at the start of some fields (default: all); each
                dtype's buffer is copied up to the end of its last field's used part.
        """
        if self.device.type != "cuda":
            return  # the mirrors are the buffers
        ends = {dt: 0 for dt in self._device}
        for name, (dtype, start, shape) in self._spans.items():
            n = math.prod(shape) if used is None or name not in used else used[name]
            ends[dtype] = max(ends[dtype], start + n)
        for dtype, end in ends.items():
            self._device[dtype][:end].copy_(self._host[dtype][:end], non_blocking=True)
        event = torch.cuda.Event()  # type: ignore[no-untyped-call]
        event.record()
        self._uploaded = event


def flat_rows(rows: list[list[int]]) -> tuple[list[int], int]:
    """Ragged rows (block tables) zero-padded to one width, row-major; and that width
    (at least 1)."""
    width = max((len(r) for r in rows), default=0) or 1
    flat: list[int] = []
    for r in rows:
        flat += r
        flat += [0] * (width - len(r))
    return flat, width
