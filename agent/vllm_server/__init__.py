"""Code the supervised vLLM server imports (its own environment, so the standard library only).

The folder is put on the server's PYTHONPATH; its modules are imported there as top-level modules.
"""
