"""Text encoders: the sentence-transformers embedder and its disk cache (``embeddings``), the onnxruntime
export (``onnx``), and where packaged models are found (``model_files``).
"""
