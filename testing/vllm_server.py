"""The local vLLM server launcher, for test suites (it lives with the vllm teacher)."""

from distilforge.plugins.teachers.vllm_server import VLLMServer, cpu_list, free_port

__all__ = ["VLLMServer", "cpu_list", "free_port"]
