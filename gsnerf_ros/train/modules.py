"""Which weights a training stage takes from a checkpoint and which it trains: the run's
``init_modules`` (:func:`load_modules`) and ``freeze`` (:func:`freeze_modules`) lists of module
prefixes, used by :class:`~gsnerf_ros.train.trainer.Trainer`."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

__all__ = ["load_modules", "freeze_modules"]


def _under(names: Iterable[str], pre: str) -> set[str]:
    """The parameter names of ``names`` under the module prefix ``pre`` (the module itself or
    anything below it)."""
    return {k for k in names if k == pre or k.startswith(pre + ".")}


def load_modules(model: nn.Module, state: dict[str, Tensor], prefixes: list[str],
                 source: str = "the checkpoint") -> int:
    """Copy the weights under each module prefix of ``prefixes`` (e.g. ``cost_volume``) from
    ``state`` into ``model``; every other weight is left as it is. Each named module must match
    ``state`` key for key and shape for shape (else ValueError naming the difference).

    An entry ``DST=SRC`` (e.g. ``encoder.semantic_stem=encoder.backbone``) fills the model's
    module DST from the checkpoint's module SRC under DST's names: every weight of DST must be
    in SRC (SRC may have more, as a full backbone has more blocks than a copy of its first
    ones), and the plain prefixes leave DST's weights to it. An entry ``-NEW`` (e.g.
    ``-encoder.depth_head``) names a module the checkpoint does not have: its weights keep
    their initialisation, and the plain prefixes above it take everything else. Returns the
    number of tensors copied."""
    own = model.state_dict()
    under = _under
    fresh: set[str] = set()
    for pre in (p for p in prefixes if p.startswith("-")):
        if not under(own, pre[1:]):
            raise ValueError(f"init_modules: {pre!r}: no parameter under {pre[1:]!r} in the model")
        fresh |= under(own, pre[1:])
    prefixes = [p for p in prefixes if not p.startswith("-")]
    entries = [(pre, *pre.split("=", 1)) if "=" in pre else (pre, pre, None) for pre in prefixes]
    claimed = fresh.union(*(under(own, dst) for _, dst, src in entries if src is not None))
    picked: dict[str, Tensor] = {}
    for pre, dst, src in entries:
        if src is not None:
            mine = under(own, dst)
            theirs = {dst + k[len(src):]: k for k in under(state, src)}
            if not mine or not theirs:
                where = f"{dst!r} in the model" if not mine else f"{src!r} in {source}"
                raise ValueError(f"init_modules: {pre!r}: no parameter under {where}")
            if not mine <= theirs.keys():
                raise ValueError(f"init_modules: {pre!r}: {source} has no "
                                 f"{sorted(mine - theirs.keys())[:4]}")
            pairs = {k: theirs[k] for k in mine}
        else:
            mine = under(own, pre) - claimed
            theirs_set = under(state, pre) - claimed
            if not mine:
                top = sorted({k.split(".")[0] for k in own})
                raise ValueError(f"init_modules: no parameter under {pre!r}; modules are {top}")
            if mine != theirs_set:
                diff = sorted(mine ^ theirs_set)[:4]
                raise ValueError(f"init_modules: {pre!r} of {source} has other weights than the "
                                 f"config's model (e.g. {diff})")
            pairs = {k: k for k in mine}
        for k, theirs_k in sorted(pairs.items()):
            if own[k].shape != state[theirs_k].shape:
                raise ValueError(f"init_modules: {k} is {tuple(state[theirs_k].shape)} in "
                                 f"{source} ({theirs_k}) but {tuple(own[k].shape)} in the "
                                 f"config's model")
            picked[k] = state[theirs_k]
    with torch.no_grad():
        for k, v in picked.items():
            own[k].copy_(v)
    return len(picked)


def freeze_modules(model: nn.Module, prefixes: list[str]) -> int:
    """Fix the weights of every parameter under the module ``prefixes`` (``"encoder"``,
    ``"encoder.semantic_head"``...) but those under an entry ``-PREFIX`` (e.g. ``[encoder,
    -encoder.depth_head]``: the encoder but its depth head). Returns the number of frozen
    parameters; an unknown prefix is an error naming the model's top-level modules."""
    names = [n for n, _ in model.named_parameters()]

    def under(pre: str) -> set[str]:
        hit = _under(names, pre.rstrip("."))
        if not hit:
            top = sorted({n.split(".")[0] for n in names})
            raise ValueError(f"freeze: no parameter under {pre!r}; modules are {top}")
        return hit

    kept = {n for pre in prefixes if pre.startswith("-") for n in under(pre[1:])}
    frozen = 0
    for pre in (p for p in prefixes if not p.startswith("-")):
        hit = under(pre) - kept
        for n, p in model.named_parameters():
            if n in hit and p.requires_grad:
                p.requires_grad_(False)
                frozen += p.numel()
    return frozen
