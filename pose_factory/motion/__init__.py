"""Motion: BVH clips retargeted onto the mannequin, and keyframed pose sequences.

A clip or a sequence becomes an ordered list of explicit pose entries (pose i is frame i), so a
JobSpec carrying motion is an ordinary schema-1 spec: no new major version, the batch id is the
hash of those poses (rounded to 4 decimals), and MAX_POSES caps its frames (docs/motion.md).
"""
