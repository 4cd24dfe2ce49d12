"""GAN pre-training as a small package: the adversarial update (``adversarial``), DiffAugment,
the real-batch loader (``batches``), KID/FID/scene-probe tracking (``evaluation``) and the loop
(``loop``).

Kept empty so that importing one part (the MGM joint loop takes the adversarial step) does not
import the others."""
