"""One model in training: its net, weight average and optimiser, to and from a ``CampaignState``."""
from __future__ import annotations

import datetime
import time

import torch

from restore.training.campaign.job import Job
from restore.training.campaign.state import CampaignState
from restore.training.data import WeightAverage


def fresh_state(job: Job) -> CampaignState:
    """The state of a model the campaign has not trained yet: its shipped weights and their budget."""
    shipped = job.shipped_model()
    return CampaignState(
        name=job.name,
        steps=job.budget.steps,
        cpu_seconds=float(job.budget.cpu_seconds),
        base={"weights": job.name, "sha256": job.shipped_sha(), "steps": job.budget.steps,
              "cpu_seconds": job.budget.cpu_seconds, "note": job.budget.note},
        tensors={f"model.{k}": v.float() for k, v in shipped.state_dict().items()},
    )


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam with one fused kernel per step (this torch has it for CPU and CUDA)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


class Trainer:
    """Trains ``job``'s model from ``state`` on ``device``; ``to_state`` gives back what to save.

    ``average``: the weight average saved outside the state (``Job.commit_average``
    False), when it belongs to this state; without one the average restarts from
    the weights.
    """

    def __init__(self, job: Job, state: CampaignState, device: torch.device, cache: dict, batch_scale: int = 1,
                 average: dict[str, torch.Tensor] | None = None) -> None:
        self.job, self.state, self.device, self.batch_scale = job, state, device, batch_scale
        recipe = job.recipe
        model = job.new_model()
        # States written before the weights were stored hold only the average: start from it.
        raw = state.group("model") or state.group("ema")
        model.load_state_dict(raw)
        self.model = job.prepare(model.to(device)).train()
        self.average = WeightAverage(self.model, recipe.ema)
        self.average.model.load_state_dict(state.group("ema") or average or raw)
        self.opt = _adam(self.model.parameters(), recipe.lr)
        self.resumed_moments = self._load_moments(state)
        self.generator = torch.Generator()
        if "rng.generator" in state.tensors:
            self.generator.set_state(state.tensors["rng.generator"])
        else:
            self.generator.manual_seed(len(state.runs) + 1)
        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        self.sampler = job.sampler(device, seed, cache)
        if "rng.sampler" in state.tensors:
            self.sampler.generator.set_state(state.tensors["rng.sampler"])
        self.steps_since_start = 0
        # Training CPU seconds at the last validation (none yet: validate at the first chance).
        self.validated_at = state.last_validation["cpu_seconds"] if state.last_validation else float("-inf")
        self.run = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "steps": 0, "cpu_seconds": 0.0, "device": str(device), "threads": torch.get_num_threads()}
        state.runs.append(self.run)
        state.schedule = {"kind": "constant after warm-up, EMA", "lr": recipe.lr, "warmup": recipe.warmup,
                          "ema": recipe.ema, "batch": recipe.batch * batch_scale, "crop": recipe.crop,
                          "moments_stored": job.store_moments}

    def _load_moments(self, state: CampaignState) -> bool:
        moments = state.group("adam")
        if not moments:
            return False
        for i, p in enumerate(self.model.parameters()):
            self.opt.state[p] = {
                "step": moments[f"{i}.step"].to(self.device),  # fused Adam keeps it on the device
                "exp_avg": moments[f"{i}.exp_avg"].to(self.device),
                "exp_avg_sq": moments[f"{i}.exp_avg_sq"].to(self.device),
            }
        return True

    def learning_rate(self) -> float:
        """Constant, after a linear warm-up whenever the moments started fresh."""
        recipe = self.job.recipe
        if self.resumed_moments:
            return recipe.lr
        return recipe.lr * min(1.0, (self.steps_since_start + 1) / recipe.warmup)

    def step(self) -> float:
        """One optimiser step; returns the loss."""
        # Noise drawn inside the loss (the autoencoders' uniform noise, LIDIA's Gaussian) follows
        # the job's own stream, so a resumed model continues its sequence whatever ran before.
        if self.steps_since_start % 100 == 0:
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))
        lr = self.learning_rate()
        for group in self.opt.param_groups:
            group["lr"] = lr
        batch = self.sampler(self.job.recipe.batch * self.batch_scale)
        loss = self.job.loss(self.model, batch, self.generator)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.job.recipe.clip)
        self.opt.step()
        self.average.update(self.model)
        self.steps_since_start += 1
        self.state.steps += 1
        self.run["steps"] += 1
        return float(loss.detach())

    def add_cpu_time(self, seconds: float) -> None:
        self.state.cpu_seconds += seconds
        self.run["cpu_seconds"] = round(self.run["cpu_seconds"] + seconds, 1)

    def to_state(self) -> CampaignState:
        """The state to save now (tensors refreshed; the bookkeeping is shared)."""
        job, tensors = self.job, {}
        half = (lambda v: v.half() if v.is_floating_point() else v) if job.store_fp16 else (lambda v: v)
        for k, v in self.model.state_dict().items():
            tensors[f"model.{k}"] = half(v)
        if job.commit_average:
            for k, v in self.average.model.state_dict().items():
                tensors[f"ema.{k}"] = half(v)
        if job.store_moments:
            for i, p in enumerate(self.model.parameters()):
                st = self.opt.state.get(p)
                if st:
                    tensors[f"adam.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(())
                    tensors[f"adam.{i}.exp_avg"] = st["exp_avg"]
                    tensors[f"adam.{i}.exp_avg_sq"] = st["exp_avg_sq"]
        tensors["rng.generator"] = self.generator.get_state()
        tensors["rng.sampler"] = self.sampler.generator.get_state()
        self.state.tensors = tensors
        return self.state


def cpu_clock() -> float:
    """CPU seconds of this process, all threads (what a budget in CPU-hours counts)."""
    return time.process_time()
