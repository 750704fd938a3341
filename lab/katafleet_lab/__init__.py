"""katafleet's multi-node lab (network namespaces + sshd nodes) and its demo."""
