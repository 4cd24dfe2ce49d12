"""Networks: the multi-task net M (``multitask``), the conditional SAGAN (``sagan``)."""
