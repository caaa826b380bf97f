"""The security pipeline shared by HTTP and WebSocket routes: origin -> rate limit -> auth -> guards."""
from bolt.security.denial import Denial
from bolt.security.origin import Admission, OriginPolicy
from bolt.security.pipeline import SecurityPipeline

__all__ = ["Admission", "Denial", "OriginPolicy", "SecurityPipeline"]
