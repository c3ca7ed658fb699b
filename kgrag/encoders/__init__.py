"""Text encoders: the sentence-transformers embedder (``embeddings``), its disk cache (``cache``), the
onnxruntime export (``onnx``), and where packaged models are found (``model_files``).
"""
