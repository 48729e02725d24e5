"""The two-VM OpenZFS lab (see README section "VM lab")."""
