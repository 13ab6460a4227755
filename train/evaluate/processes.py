"""The process group the evaluation runs in: accelerate's when launched with it, else one process."""

from __future__ import annotations

from typing import Sequence

from . import features as feat


class Processes:
    """The accelerate process group (or a single process without it)."""

    def __init__(self, cpu: bool = False):
        try:
            from accelerate import PartialState

            state = PartialState(cpu=cpu)
            self.index, self.count, self.device = state.process_index, state.num_processes, state.device
            self.is_main = state.is_main_process
            self._wait = state.wait_for_everyone
        except ImportError:
            import torch

            self.index, self.count, self.is_main = 0, 1, True
            self.device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
            self._wait = lambda: None

    def wait(self) -> None:
        self._wait()

    def mine(self, items: Sequence) -> list:
        return feat.shard(items, self.index, self.count)
