"""Feature extraction past one machine: ``python -m lib extract ... --executor submitit --shards N``.

The files still to do are split into N submitit jobs (lib.cluster: SLURM, or
submitit's local executor without it), interleaved so that every shard gets
every speaker and split. Each shard pins its threads to its cores, skips the
files an earlier attempt finished (their sidecars), extracts the rest and
returns its report; the reports merge into one, and the files of a shard
whose job died are listed by path with the job's log.
"""
from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from ..cluster import SubmititOptions, run_jobs
from .extract import EXTRACTORS, ExtractorSpec, ExtractReport, extract_jobs, is_up_to_date


class ShardJob:
    """One shard of an extraction as a submitit job: pin threads, skip finished files, extract.

    ``checkpoint`` makes submitit requeue it after preemption or a time-out; the
    requeued shard skips the files its first attempt finished (their sidecars).
    """

    def __init__(self, feature: str, cpus: int) -> None:
        self.feature, self.cpus = feature, cpus

    def __call__(self, jobs, checkpoint, workers, device, batch_size) -> ExtractReport:
        from ..threads import pin_threads

        pin_threads(self.cpus)
        spec = EXTRACTORS[self.feature]
        report = ExtractReport(self.feature, total=len(jobs))
        todo = [j for j in jobs if not is_up_to_date(j[1], j[2])]
        report.skipped = len(jobs) - len(todo)
        if todo:
            extract_jobs(spec, todo, report, checkpoint, workers, device, batch_size, progress=False)
        print(report.summary(), flush=True)
        return report

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def extract_sharded(root, spec: ExtractorSpec, jobs: list, report: ExtractReport, checkpoint, workers: int,
                    device: str | None, batch_size: int | None, shards: int | None,
                    options: SubmititOptions | None) -> None:
    """Split ``jobs`` [(wav, npy, identity)] into ``shards`` submitit jobs; merge their reports into ``report``.

    The files of a shard whose job died or raised are listed in ``report.failed``
    (by path, with the job's log) unless they are on disk anyway.
    """

    options = options or SubmititOptions.from_env()
    n = max(1, min(len(jobs), shards or options.max_parallel))
    parts = [jobs[k::n] for k in range(n)]  # interleaved: each shard gets every speaker and split
    # A shard runs `workers` processes (function extractors) or torch threads (models) on its own cores.
    per_shard = max(1, min(workers, options.cpus_per_job))
    tasks = [(f"shard {k + 1}/{n}", ShardJob(spec.name, options.cpus_per_job),
              (part, checkpoint, per_shard, device, batch_size)) for k, part in enumerate(parts)]
    folder = Path(options.folder) if options.folder else Path(root) / "wav_features" / "_submitit" / spec.name
    bar = tqdm(total=n, desc=f"{spec.name} shards", unit="job")

    def outcome(o) -> None:
        k = int(o.name.split()[1].split("/")[0]) - 1
        if o.error is None:
            r = o.result
            report.written += r.written
            report.failed += r.failed
        else:  # the job died or raised: its files that are not on disk now are this report's failures
            for wav, npy, identity in parts[k]:
                if is_up_to_date(npy, identity):
                    report.written += 1
                else:
                    report.failed.append((str(wav), f"not extracted: {o.name} (job {o.job_id}) failed: {o.error} "
                                                    f"(log: {o.log})"))
        bar.update()

    try:
        run_jobs(tasks, options, folder, outcome, job_name=f"t2a-extract-{spec.name}")
    finally:
        bar.close()
