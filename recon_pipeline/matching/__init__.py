"""Payer matching and allocation: link each bank line to a customer and allocate it to orders (matching.receipt_links)."""
