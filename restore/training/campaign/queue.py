"""The campaign's queue of models and the priority that shares time among them.

Priorities are shares of each run's CPU time (``schedule.next_job``):

- the autoencoders first (6 of 12.5 shares): each lifts three restorers (VBLE,
  VBLE-xz, the deep-OT tuner) whose quality they cap, and a step is cheap;
  ``cae-a0483`` (4) is the one VBLE's deblurring, VBLE-xz and the tuner use,
  ``cae-a0067`` (2) the strong prior of the low-noise tasks;
- the variance decoder (1): only VBLE-xz uses it, and it has to follow
  ``cae-a0483`` anyway after each release of it;
- LIDIA (5.5): gray sigma 25 (2) is the headline benchmark, colour 25 (1.5)
  also serves colour at 15 and 50 by rescaling, gray 15 and 50 (1 each).

The shipped budgets are the cumulative ones of the model cards (each file's
JSON keeps only its last run's).
"""
from __future__ import annotations

from pathlib import Path

from restore.training.campaign.cae_job import CaeJob
from restore.training.campaign.job import DATA_ROOT, Job, ShippedBudget
from restore.training.campaign.lidia_job import LidiaJob
from restore.training.campaign.variance_job import VarianceJob
from restore.weights import WEIGHTS_DIR


def campaign_jobs(data_root: Path = DATA_ROOT, weights_dir: Path = WEIGHTS_DIR) -> list[Job]:
    """Every model of the campaign, in queue order."""
    where = {"data_root": data_root, "weights_dir": weights_dir}
    return [
        CaeJob("cae-a0483", 0.0483, 4.0, ShippedBudget(10_475, 55 * 60, "Adam 5e-4 cosine, 55 min, 1 core"), **where),
        CaeJob("cae-a0067", 0.0067, 2.0, ShippedBudget(9_005, 50 * 60, "Adam 5e-4 cosine, 50 min, 1 core"), **where),
        VarianceJob("cae-a0483-var", "cae-a0483", 1.0, ShippedBudget(4_204, 14 * 60, "Adam 5e-4 cosine, 14 min"), **where),
        LidiaJob("gray", 25, 2.0, ShippedBudget(589, 68 * 60, "50 min from scratch + 18 min warm restart"), **where),
        LidiaJob("color", 25, 1.5, ShippedBudget(350, 50 * 60, "50 min from scratch"), **where),
        LidiaJob("gray", 15, 1.0, ShippedBudget(708, 83 * 60, "the gray-25 run + 15 min fine-tune"), **where),
        LidiaJob("gray", 50, 1.0, ShippedBudget(589, 68 * 60, "50 min at sigma 25 + 18 min fine-tune"), **where),
    ]


def select(jobs: list[Job], names: list[str] | None) -> list[Job]:
    """The jobs named (all when ``names`` is empty); an unknown name is an error naming the known ones."""
    if not names:
        return jobs
    known = {j.name: j for j in jobs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown campaign model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]
