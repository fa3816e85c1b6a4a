"""Running a network on an image: device choice, the predict pipeline
(preprocess -> forward -> upsample -> labels), U-Net's overlap-tile strategy,
and the benchmark of that path."""
