#!/usr/bin/env python3
"""Writes tests/data/hostile/: small checkpoints whose pickles name globals outside the allowlist,
written by PyTorch itself (torch.save), for `sdc inspect` / `sdc convert` tests:
  evil-posix-system.ckpt         zip format, a payload that runs os.system (pickled as posix.system)
  evil-posix-system-legacy.ckpt  the same in the legacy (non-zip) format
  lightning-callback.ckpt        an unknown but harmless class (a pytorch_lightning callback), as real
                                 SD 1.x checkpoints carry
Each holds state_dict = {"w": tensor([1.5, -2, 0.25, 4])}. Nothing here is ever unpickled by sdc's
tests with Python. Run from the repo root: /usr/bin/python3 scripts/make_hostile_ckpt.py"""
import os
import sys
import types

import torch

OUT = "tests/data/hostile"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# a stand-in for pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint
mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
sys.modules["pytorch_lightning"] = types.ModuleType("pytorch_lightning")
sys.modules["pytorch_lightning.callbacks"] = types.ModuleType("pytorch_lightning.callbacks")
sys.modules[mod.__name__] = mod


class ModelCheckpoint:
    def __init__(self):
        self.monitor = "val/loss_simple_ema"
        self.best_model_score = None


ModelCheckpoint.__module__ = mod.__name__
mod.ModelCheckpoint = ModelCheckpoint

os.makedirs(OUT, exist_ok=True)
sd = {"w": torch.tensor([1.5, -2.0, 0.25, 4.0])}
torch.save({"state_dict": sd, "payload": Evil()}, os.path.join(OUT, "evil-posix-system.ckpt"))
torch.save({"state_dict": sd, "payload": Evil()}, os.path.join(OUT, "evil-posix-system-legacy.ckpt"),
           _use_new_zipfile_serialization=False)
torch.save({"state_dict": sd, "callbacks": {"ModelCheckpoint": ModelCheckpoint()}},
           os.path.join(OUT, "lightning-callback.ckpt"))
print("wrote", sorted(os.listdir(OUT)))
