"""Standalone AudioToken trainer and generator (diffusers + accelerate).

`python -m train ...` trains an Embedder; `python -m train.generate ...` makes images;
scripts call `train.loop.train(train.config.TrainConfig(...))`.
"""
