"""Arbitrary neural style transfer (paper §2.4): AdaIN vs SaAdaIN (and a style-id-conditioned SaIN) on a frozen
VGG-19 encoder with a trained decoder.

Modules: ``networks`` (models, losses, official weight layouts), ``stylize`` (inference core; ``python -m
tasks.nst.stylize`` runs ``stylize_cli``), ``data`` + ``demo_data`` (image folders, offline demo folders), ``train``
(``python -m tasks.nst``), ``plot`` (loss curves, ``python -m tasks.nst.plot``).

Protocol (``scale=full``, as the official code unless marked):

* Loss 1·L_c + 10·L_s; L_c = MSE(relu4_1(g(t)), t) with t the network's own (Sa)AdaIN output; L_s = Σ over
  relu1_1…relu4_1 of MSE(μ) + MSE(σ). Adam 1e-4, lr_t = 1e-4 / (1 + 5e-5·t), batch 8, 160k iterations; crops of
  256 px from 512×512 resizes; content and style from two independent shuffled streams (resumable exactly).
* Reported (``results.json``, weighted content ×1, style ×10 as the paper's curves): ``train_content``,
  ``train_style`` = means over the last ``train.final_window`` iterations (1000 at full scale, 40 demo, 3 smoke)
  of the training-batch losses; ``val_content``, ``val_style`` on held-out folders; ``val_content_adain_target``
  (and ``train_content_adain_target``) = the content loss against the plain AdaIN target AdaIN(φ(c), φ(s)) — the
  like-for-like comparison, since SaAdaIN's own target moves with its learned affine.
* Validation (differs from the official random crops and random pairs): centre crops and a fixed pairing, pair k =
  (content k mod n_c, style (k + ⌊k/n_c⌋) mod n_s), ``val.num_pairs`` pairs (default min(n_c, n_s), the official
  count); every ``val.every`` iterations, at iteration 0 and at the end; the mean over pairs is exact (batch means
  weighted by batch size, summed over DDP ranks).
* ``sain``: the training style folder is a fixed set of styles, the sorted file index is the style id; each id's
  affine starts at its relu4_1 (σ, μ) (``model.sain_init_from_styles``). It cannot take unseen styles, so its
  validation pairs the held-out content with the *training* styles. At full scale point ``data.style_dir`` at a
  modest style set (the embedding has one row per file).
* Without ``model.vgg_path`` (``vgg_normalised.pth``) the encoder is a seeded random stand-in: results.json
  ``stand_in`` fields, sample-grid file names (``-stand-in-encoder``), captions and the curves say so.
"""
