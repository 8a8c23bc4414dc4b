"""What sim's HTTP apps share: JSON errors, strict bodies, bearer tokens, probes, lifetime.

Both the main app (``sim.app``) and the bundled sink (``sim.sink``) build on this
package; it imports neither of them, nor the delivery pipeline.
"""
