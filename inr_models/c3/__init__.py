"""A C3-style codec (Kim et al., 2023) on COOL-CHIC's structure: C3's latents, bilinear
upsampling, GELU synthesis and training recipe (soft rounding with Kumaraswamy noise, then a
straight-through fine-tuning), coded by the COOL-CHIC file machinery with an integer ARM."""
