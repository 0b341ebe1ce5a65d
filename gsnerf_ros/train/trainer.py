"""The training loop (``gsnerf-train``): single process, or DDP under ``torchrun``.

- Adam, linear warm-up then cosine decay to ``lr_min`` (:func:`lr_at`), gradient clipping;
- the sampling schedule of paper A.4 (``model.sampling.mode=mixed``: half uniform / half
  depth-guided before ``mixed_switch_step``, all guided after) — the step is passed to the model;
- bf16 autocast of the forward pass on CUDA only;
- DistributedDataParallel when ``WORLD_SIZE > 1`` (NCCL on CUDA, gloo on CPU);
- every step reseeds torch/numpy/random from (seed, step, rank), so a resumed run draws exactly
  the samples and rays the uninterrupted run would have: resume is bit-exact;
- one sample per step from a DataLoader (:mod:`gsnerf_ros.train.loader`): ``data.num_workers``
  persistent seeded workers, pinned memory on CUDA; the samples do not depend on the worker count;
- checkpoints: safetensors weights + JSON sidecar, optimiser state in safetensors (no pickle);
- model selection on the **validation** split only (best = highest ``log.select_metric``),
  written to ``<run_dir>/best.safetensors``;
- TensorBoard scalars and image panels, tqdm progress (or a stdout line every ``log_every``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from gsnerf_ros.config import save_config, to_dict
from gsnerf_ros.device import cpu_thread_warning, resolve_device
from gsnerf_ros.train.checkpoint import (latest_checkpoint, load_training_state,
                                         optimizer_from_tensors, save_training_checkpoint)
from gsnerf_ros.train.config import LOWER_IS_BETTER, TrainConfig
from gsnerf_ros.train.loader import make_train_loader, step_item_index, step_seed, to_device
from gsnerf_ros.train.losses import (class_weights_for, multilevel_depth_loss,
                                     ray_depth_loss, rgb_loss, self_supervised_depth_loss,
                                     semantic_2d_ce, semantic_ce)
from gsnerf_ros.train.depth_prior_objective import DepthPriorStep
from gsnerf_ros.train.modules import freeze_modules, load_modules
from gsnerf_ros.train.segmenter_objective import FrameBatches, SegmenterStep

__all__ = ["lr_at", "progress_line", "seed_step", "TrainStep", "Trainer", "train",
           "freeze_modules", "load_modules"]


def lr_at(step: int, steps: int, lr: float, lr_min: float, warmup: int,
          time_fraction: float = 0.0) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up over ``warmup`` steps from lr/warmup
    to lr, then cosine decay from lr to lr_min at ``steps``. ``time_fraction`` (elapsed share
    of a time limit, ``optim.anneal_by_time``) moves the decay on when it is further along than
    the steps."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    t = min(max(max(step - warmup, 0) / max(steps - warmup, 1), time_fraction), 1.0)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))


def progress_line(done: int, steps: int, logs: dict[str, float], elapsed_s: float,
                  steps_run: int) -> str:
    """One plain-text log line (stdout when the progress bar is off): step, loss terms, lr and
    the mean step time so far (the first step includes CUDA/cuDNN warm-up)."""
    terms = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "lr")
    rate = elapsed_s / max(steps_run, 1)
    return (f"step {done}/{steps} {terms} lr={logs.get('lr', float('nan')):.3g} "
            f"{rate:.3f} s/step elapsed {elapsed_s:.1f} s")


def seed_step(seed: int, step: int, rank: int) -> None:
    """Seed torch, numpy and random from (seed, step, rank) — the basis of bit-exact resume."""
    s = step_seed(seed, step, rank)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


class TrainStep(nn.Module):
    """Forward pass + losses of one training sample (the module DDP wraps).

    ``forward(sample, uv, step)``: ``sample`` is a GSNeRFDataset dict (target last), ``uv``
    [N,2] integer pixel coordinates of the target rays. Returns (loss, dict of detached terms).
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        lc = cfg.loss
        w = class_weights_for(lc.class_weights, lc.background_classes, lc.background_weight,
                              cfg.model.num_classes)
        self.register_buffer("class_weights", w if w is not None else torch.ones(0),
                             persistent=False)

    def forward(self, sample: dict[str, Any], uv: torch.Tensor, step: int
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lc = self.cfg.loss
        images, K, c2w = sample["images"], sample["K"], sample["c2w"]
        V = images.shape[0] - 1
        H, W = images.shape[-2:]
        near, far = float(sample["near"]), float(sample["far"])
        cw = self.class_weights if self.class_weights.numel() else None
        enc = self.model.encode_sources(images[:V], K[:V], c2w[:V], near, far)
        out = self.model.render_rays(enc, K[V], c2w[V], uv, H, W, step=step)
        u, v = uv[:, 0].long(), uv[:, 1].long()
        terms: dict[str, torch.Tensor] = {}
        terms["rgb"] = rgb_loss(out["rgb"].float(), images[V][:, v, u].T)
        labels = sample.get("labels")
        if labels is not None and (lc.semantic > 0 or lc.semantic_2d > 0):
            terms["semantic"] = semantic_ce(out["semantic_logits"].float(), labels[V][v, u],
                                            class_weights=cw)
            terms["semantic_2d"] = semantic_2d_ce(enc.semantic_logits_2d.float(), labels[:V],
                                                  class_weights=cw)
        depths = sample.get("depths")
        if lc.depth_mode == "supervised":
            if depths is None:
                raise ValueError("loss.depth_mode=supervised but the data has no depth; use "
                                 "loss.depth_mode=self_supervised")
            levels = [d.float() for d in enc.depth_levels]
            terms["depth_src"] = multilevel_depth_loss(levels, depths[:V], lc.level_weights,
                                                       lc.smooth_l1_beta)
            terms["depth_ray"] = ray_depth_loss(out["depth"].float(), depths[V][v, u],
                                                lc.smooth_l1_beta)
        elif lc.depth_mode == "self_supervised":
            levels = [d.float() for d in enc.depth_levels]
            ss, parts = self_supervised_depth_loss(
                images[:V], levels, K[:V], c2w[:V], lc.level_weights, lc.ss_recon, lc.ss_ssim,
                lc.ss_smooth, lc.ss_neighbours)
            terms["depth_ss"] = ss
            for k, t in parts.items():
                terms[f"ss_{k}"] = t.detach()
            td = out["target_depth"].detach().float()
            terms["depth_ray_to_target"] = ray_depth_loss(out["depth"].float(), td,
                                                          lc.smooth_l1_beta)
        weights = {"rgb": lc.rgb, "semantic": lc.semantic, "semantic_2d": lc.semantic_2d,
                   "depth_src": lc.depth_src, "depth_ray": lc.depth_ray,
                   "depth_ss": lc.ss_weight, "depth_ray_to_target": lc.ss_ray_to_target}
        loss = sum(weights[k] * t for k, t in terms.items() if k in weights)
        assert isinstance(loss, torch.Tensor)
        logs = {k: t.detach() for k, t in terms.items()}
        logs["loss"] = loss.detach()
        return loss, logs


class Trainer:
    """Owns model, optimiser, data and logging of one run (one process of a DDP job)."""

    def __init__(self, cfg: TrainConfig, rank: int = 0, world_size: int = 1) -> None:
        from gsnerf_ros.model import GSNeRF
        from gsnerf_ros.train.data_setup import build_train_set, build_val_views

        self.cfg = cfg
        self.rank, self.world_size = rank, world_size
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
            busy = cpu_thread_warning(cfg.threads) if rank == 0 else None
            if busy:
                print(f"gsnerf-train: warning: {busy}", file=sys.stderr, flush=True)
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        seed_step(cfg.seed, -1, 0)  # identical initial weights on every rank
        self.train_set = build_train_set(cfg)
        if cfg.objective in ("segmenter", "depth_prior"):   # single frames of many rooms
            self.train_set = FrameBatches(self.train_set, cfg.data.num_sources)
        class_names, palette = self.train_set.class_names, self.train_set.palette
        init = cfg.init_checkpoint
        src = GSNeRF.from_checkpoint(init, device="cpu") if init else None
        if cfg.model_from_checkpoint:
            if src is None:
                raise ValueError("model_from_checkpoint=true needs init_checkpoint=...")
            cfg.model = copy.deepcopy(src.config)
        if not class_names:
            # unlabelled data (a robot's bag): self-supervised fine-tuning of a checkpoint, which
            # keeps its classes
            if src is None:
                raise ValueError(
                    f"the training data ({cfg.data.finetune_scene or cfg.data.train_root}) has "
                    f"no labels; start from a checkpoint that has the classes (init_checkpoint="
                    f"...) and fine-tune self-supervised (loss.depth_mode=self_supervised), as "
                    f"config/train_bag_finetune.yaml does")
            if cfg.log.select_metric in ("mIoU", "acc", "class_acc"):
                raise ValueError(f"log.select_metric={cfg.log.select_metric} needs labels; the "
                                 f"training data has none: use log.select_metric=psnr")
            class_names, palette = list(src.class_names), src.palette
        if cfg.model.num_classes != len(class_names):
            raise ValueError(f"model.num_classes={cfg.model.num_classes} but the "
                             f"{'checkpoint' if not self.train_set.class_names else 'training data'}"
                             f" has {len(class_names)} classes; set model.num_classes="
                             f"{len(class_names)}")
        self.start_step = 0
        self.best_score = -math.inf
        if src is not None:
            # The run's model section governs (options without parameters, like sampling or
            # semantic.label_skip, may differ); the weights must fit it exactly.
            self.model = GSNeRF(cfg.model, class_names=src.class_names, palette=src.palette)
            if cfg.init_modules:
                load_modules(self.model, src.state_dict(), cfg.init_modules, str(init))
            else:
                try:
                    self.model.load_state_dict(src.state_dict(), strict=True)
                except RuntimeError as exc:
                    raise ValueError(f"init_checkpoint {init} has another architecture than the "
                                     f"config's model section; copy the model config of its "
                                     f"sidecar (.json) into the YAML, or name the modules to take "
                                     f"(init_modules) ({str(exc)[:200]})") from exc
        else:
            self.model = GSNeRF(cfg.model, class_names=class_names, palette=palette)
        self.model.to(self.device).train()
        freeze_modules(self.model, cfg.freeze)
        step_class = {"segmenter": SegmenterStep, "depth_prior": DepthPriorStep}.get(
            cfg.objective, TrainStep)
        self.step_module: nn.Module = step_class(self.model, cfg).to(self.device)
        self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad],
                                    lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        resume = cfg.resume
        if resume == "auto":
            found = latest_checkpoint(self.ckpt_dir)
            resume = str(found) if found else ""
        if resume:
            self._resume(resume)
        if world_size > 1:
            ddp_kw: dict[str, Any] = {"find_unused_parameters": True}
            if self.device.type == "cuda":
                ddp_kw["device_ids"] = [self.device.index]
            self.step_module = nn.parallel.DistributedDataParallel(self.step_module, **ddp_kw)
        self.val_views = build_val_views(cfg) if rank == 0 else []
        self.writer = None
        if rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
            if cfg.log.tensorboard:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(self.run_dir / "tb"))

    def _resume(self, path: str) -> None:
        from safetensors.torch import load_file

        tensors, state = load_training_state(path)
        weights = load_file(str(path))
        self.model.load_state_dict(weights, strict=True)
        optimizer_from_tensors(self.opt, tensors, state["param_groups"])
        self.start_step = int(state["step"])
        self.best_score = float(state.get("best_score", -math.inf))

    # ------------------------------------------------------------------ one step
    def rays_for_step(self, H: int, W: int) -> torch.Tensor:
        """``rays_per_step`` random target pixels (with replacement), [N,2] int (u, v)."""
        n = self.cfg.optim.rays_per_step
        u = torch.randint(0, W, (n,))
        v = torch.randint(0, H, (n,))
        return torch.stack([u, v], -1).to(self.device)

    def train_step(self, step: int, sample: dict[str, Any] | None = None,
                   time_fraction: float = 0.0) -> dict[str, float]:
        """One optimisation step at ``step`` (0-based) on ``sample`` (the step's item from the
        loader; None = read it here); ``time_fraction`` as in :func:`lr_at`. Returns the logged
        scalars."""
        cfg = self.cfg
        if sample is None:
            sample = self.train_set[step_item_index(cfg.seed, step, self.rank,
                                                    len(self.train_set))]
        seed_step(cfg.seed, step, self.rank)
        sample = to_device(sample, self.device)
        H, W = sample["images"].shape[-2:]
        uv = self.rays_for_step(H, W)
        lr = lr_at(step, cfg.optim.steps, cfg.optim.lr, cfg.optim.lr_min, cfg.optim.warmup_steps,
                   time_fraction)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        amp = (torch.autocast("cuda", dtype=torch.bfloat16)
               if self.device.type == "cuda" and cfg.bf16 else nullcontext())
        with amp:
            loss, logs = self.step_module(sample, uv, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}: "
                                     f"{ {k: float(v) for k, v in logs.items()} }")
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if cfg.optim.clip_mode == "value":
            torch.nn.utils.clip_grad_value_(params, cfg.optim.clip)
        elif cfg.optim.clip_mode == "norm":
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, cfg.optim.clip).detach()
        self.opt.step()
        out = {k: float(v) for k, v in logs.items()}
        out["lr"] = lr
        return out

    # ------------------------------------------------------------------ validation
    def validate(self, step: int) -> dict[str, Any]:
        """Score the validation views (rank 0); log to TensorBoard; returns the metrics."""
        from gsnerf_ros.train.evaluate import EvalOptions, evaluate

        if not self.val_views:
            return {}
        panels = self.run_dir / "val_panels" / f"step_{step:07d}"
        res = evaluate(self.model, self.val_views, EvalOptions(
            baseline=False, lpips=False, progress=False,
            panels_dir=str(panels) if self.cfg.log.panels > 0 else None,
            panels_per_scene=1), device=self.device, total=len(self.val_views))
        self.model.train()
        res["segmenter_mIoU"] = res.get("segmenter_on_target", {}).get("mIoU")
        if self.writer is not None:
            for k in ("mIoU", "acc", "class_acc", "psnr", "ssim", "depth_abs_rel",
                      "target_depth_abs_rel", "segmenter_mIoU"):
                if res.get(k) is not None:
                    self.writer.add_scalar(f"val/{k}", res[k], step)
            if panels.is_dir():
                import cv2
                for i, p in enumerate(sorted(panels.glob("*.png"))[: self.cfg.log.panels]):
                    img = cv2.imread(str(p))[..., ::-1].copy()
                    self.writer.add_image(f"val/panel_{i}", img, step, dataformats="HWC")
        return res

    def select_score(self, res: dict[str, Any]) -> float:
        """The validation score the best weights are kept by (higher is better: an error
        metric, ``depth_abs_rel``, is negated)."""
        v = res.get(self.cfg.log.select_metric)
        if v is None:
            return -math.inf
        return -float(v) if self.cfg.log.select_metric in LOWER_IS_BETTER else float(v)

    # ------------------------------------------------------------------ checkpoints
    def save(self, step: int, val: dict[str, Any] | None = None) -> Path:
        """Checkpoint after ``step`` steps (rank 0 only)."""
        meta = {"train_config": to_dict(self.cfg), "metadata": {
            "train_data": self.cfg.data.train_root, "steps_done": step,
            "val_metrics": {k: val.get(k) for k in ("mIoU", "acc", "psnr", "ssim",
                                                    "depth_abs_rel", "segmenter_mIoU")}
            if val else None}}
        return save_training_checkpoint(self.model, self.opt, self.ckpt_dir / f"step_{step:07d}",
                                        step, {**meta, "best_score": self.best_score})

    def fit(self) -> dict[str, Any]:
        """Train from ``start_step`` to ``optim.steps``; returns a summary dict."""
        cfg = self.cfg
        steps = min(cfg.optim.stop_at, cfg.optim.steps) if cfg.optim.stop_at else cfg.optim.steps
        t0 = time.time()
        bar = tqdm(range(self.start_step, steps), initial=self.start_step, total=steps,
                   desc="train", disable=self.rank != 0 or not cfg.log.progress)
        last: dict[str, float] = {}
        history: list[dict[str, Any]] = []
        limit = cfg.optim.time_limit_s
        loader = iter(make_train_loader(self.train_set, cfg.seed, self.rank, self.start_step,
                                        steps, cfg.data.num_workers, self.device))
        by_time = cfg.optim.anneal_by_time and limit > 0
        elapsed = 0.0       # share of the time limit used, the same on every rank
        for step in bar:
            last = self.train_step(step, next(loader), elapsed if by_time else 0.0)
            done = step + 1
            if limit and done < steps:
                elapsed = (time.time() - t0) / limit     # host clock: no device sync per step
                if self.world_size > 1:                  # every rank stops at the same step and
                    flag = torch.tensor(elapsed, device=self.device)   # sets the same lr
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                    elapsed = float(flag)
                if elapsed > 1.0:
                    steps = done      # validate, checkpoint and stop at this step
            if self.rank == 0:
                if self.writer is not None and (done % cfg.log.log_every == 0 or done == steps):
                    for k, v in last.items():
                        self.writer.add_scalar(f"train/{k}", v, done)
                bar.set_postfix({k: f"{last[k]:.4f}" for k in ("loss", "rgb") if k in last})
                if not cfg.log.progress and (done % cfg.log.log_every == 0 or done == steps
                                             or step == self.start_step):
                    print(progress_line(done, steps, last, time.time() - t0,
                                        done - self.start_step), flush=True)
                val = None
                if done % cfg.log.val_every == 0 or done == steps:
                    val = self.validate(done)
                    history.append({"step": done, **{k: val.get(k) for k in (
                        "mIoU", "psnr", "depth_abs_rel", "segmenter_mIoU")}})
                    score = self.select_score(val)
                    if score > self.best_score:
                        self.best_score = score
                        self._write_best(done, val)
                if done % cfg.log.ckpt_every == 0 or done == steps:
                    self.save(done, val)
            if self.world_size > 1 and (done % cfg.log.val_every == 0 or done == steps):
                dist.barrier()
            if done == steps:
                break
        if self.writer is not None:
            self.writer.flush()
        summary = {"steps": steps, "wall_s": time.time() - t0, "last": last,
                   "best_score": self.best_score, "select_metric": cfg.log.select_metric,
                   "val_history": history}
        if self.rank == 0:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _write_best(self, step: int, val: dict[str, Any]) -> None:
        meta = {"step": step, "selected_on": "validation split", "select_metric":
                self.cfg.log.select_metric, "val_metrics": {
                    k: val.get(k) for k in ("mIoU", "acc", "class_acc", "psnr", "ssim",
                                            "depth_abs_rel", "target_depth_abs_rel",
                                            "segmenter_mIoU")},
                "train_data": self.cfg.data.train_root, "val_data": self.cfg.data.val_root}
        self.model.save_checkpoint(self.run_dir / "best.safetensors", metadata=meta)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run training; under torchrun (``WORLD_SIZE`` > 1) initialise the process group first."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if resolve_device(cfg.device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    try:
        trainer = Trainer(cfg, rank=rank, world_size=world)
        return trainer.fit()
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def copy_best(run_dir: str | Path, dest: str | Path) -> Path:
    """Copy ``<run_dir>/best.safetensors`` (+ sidecar) to ``dest`` (a .safetensors path)."""
    src = Path(run_dir) / "best.safetensors"
    dst = Path(dest)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst
