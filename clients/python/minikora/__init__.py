"""minikora for Python test suites: `Minikora` (a context manager) and a pytest plugin
(fixtures `minikora` and `kafka_reset`, registered when the package is installed)."""

from minikora.cluster import Minikora, MinikoraError, find_binary

__all__ = ["Minikora", "MinikoraError", "find_binary"]
__version__ = "0.1.0"
