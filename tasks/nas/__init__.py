"""NAS on NAS-Bench-201 with (Sandwich) conditional batch norm in the supernet (paper §2.2).

- :mod:`tasks.nas.search_space` — op names, edges, condition index, genotype / arch-string utilities.
- :mod:`tasks.nas.supernet` — the NB201 search cell and supernet with the ``bn`` / ``ccbn`` / ``sabn`` / ``saauxbn``
  norm variants, DARTS (softmax mixture) and GDAS (hard Gumbel sample) forward passes.
- :mod:`tasks.nas.algorithms` — Gumbel sampling, the GDAS τ schedule, the first-order α step and the DARTS
  second-order (unrolled) α step.
- :mod:`tasks.nas.benchmark` — NAS-Bench-201 (NATS-Bench ``tss``) accuracy look-up and a fixture writer.
- :mod:`tasks.nas.data` — NB201 split files, the ImageNet16-120 reader (registered as dataset ``imagenet16-120``
  on import) and the search data (which samples feed the w-step, the α-step and the supernet accuracy).
- :mod:`tasks.nas.search` — the search loop (``python -m tasks.nas``); :mod:`tasks.nas.report` — per-epoch
  records, results.json metrics and the accuracy-vs-epoch curve; :mod:`tasks.nas.config` — the config schema.
"""

from .data import register_imagenet16_120

register_imagenet16_120()
