"""Models shipped with ecglit (data files, no code): ``<name>.ckpt`` with its model card ``<name>.md``.

Load one by name wherever a checkpoint is taken (``predict.py ckpt=synthetic_resnet_small``); rebuild it with
``python scripts/build_pretrained.py`` (see the model card).
"""
