"""masktax: measure, fix and decode around the mask tax of masked diffusion language models.

References: "Masks Can Be Distracting: On Context Comprehension in Diffusion Language Models"
(arXiv 2511.21338) and "Soft-Masked Diffusion Language Models" (arXiv 2510.17206).
"""

__version__ = "0.1.0"
