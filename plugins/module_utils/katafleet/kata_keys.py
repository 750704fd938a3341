"""Catalogue of the keys Kata Containers' Go runtime reads from configuration.toml.

Data, not logic: one table per TOML table, key -> value type. Kata's Go runtime silently ignores any
key it does not know (BurntSushi/toml decoding into the structs of
kata-containers/kata-containers src/runtime/pkg/katautils/config.go), so katafleet checks every key
it writes against this catalogue.

Sources (union):
- the struct tags of `hypervisor`, `runtime`, `agent`, `factory`, `image` in
  src/runtime/pkg/katautils/config.go;
- every key, set or commented out, in the shipped templates src/runtime/config/configuration-{qemu,clh,fc}.toml.in
  at tag 3.22.0 and at main 7c6ba40c (copies in tests/data/fixtures/kata/).

The `[hypervisor.<name>]` tables all decode into the same Go struct, so they share one key set.
Types: "bool", "int", "number" (int or float), "str", "list" (of strings).
"""

# Hypervisor table names in the wild: Go runtime (config.go *HypervisorTableType) and runtime-rs.
HYPERVISOR_NAMES = ("qemu", "clh", "firecracker", "dragonball", "acrn", "stratovirt", "remote")

KEYS = {
    "hypervisor": {
        "block_device_aio": "str",
        "block_device_cache_direct": "bool",
        "block_device_cache_noflush": "bool",
        "block_device_cache_set": "bool",
        "block_device_driver": "str",
        "block_device_logical_sector_size": "int",
        "block_device_physical_sector_size": "int",
        "cold_plug_vfio": "str",
        "confidential_guest": "bool",
        "cpu_features": "str",
        "ctlpath": "str",
        "default_bridges": "int",
        "default_maxmemory": "int",
        "default_maxvcpus": "int",
        "default_memory": "int",
        "default_vcpus": "number",
        "disable_block_device_use": "bool",
        "disable_guest_selinux": "bool",
        "disable_image_nvdimm": "bool",
        "disable_nesting_checks": "bool",
        "disable_seccomp": "bool",
        "disable_selinux": "bool",
        "disable_vhost_net": "bool",
        "disk_rate_limiter_bw_max_rate": "int",
        "disk_rate_limiter_bw_one_time_burst": "int",
        "disk_rate_limiter_ops_max_rate": "int",
        "disk_rate_limiter_ops_one_time_burst": "int",
        "enable_annotations": "list",
        "enable_debug": "bool",
        "enable_guest_swap": "bool",
        "enable_hugepages": "bool",
        "enable_iommu": "bool",
        "enable_iommu_platform": "bool",
        "enable_iothreads": "bool",
        "enable_mem_prealloc": "bool",
        "enable_numa": "bool",
        "enable_vhost_user_store": "bool",
        "enable_virtio_mem": "bool",
        "entropy_source": "str",
        "extra_monitor_socket": "str",
        "file_mem_backend": "str",
        "firmware": "str",
        "firmware_volume": "str",
        "guest_hook_path": "str",
        "guest_memory_dump_paging": "bool",
        "guest_memory_dump_path": "str",
        "hot_plug_vfio": "str",
        "hotplug_vfio_on_root_bus": "bool",
        "hypervisor_loglevel": "int",
        "image": "str",
        "indep_iothreads": "int",
        "initrd": "str",
        "jailer_path": "str",
        "kernel": "str",
        "kernel_params": "str",
        "machine_accelerators": "str",
        "machine_type": "str",
        "memory_offset": "int",
        "memory_slots": "int",
        "msize_9p": "int",
        "net_rate_limiter_bw_max_rate": "int",
        "net_rate_limiter_bw_one_time_burst": "int",
        "net_rate_limiter_ops_max_rate": "int",
        "net_rate_limiter_ops_one_time_burst": "int",
        "numa_mapping": "list",
        "path": "str",
        "pcie_root_port": "int",
        "pflashes": "list",
        "reclaim_guest_freed_memory": "bool",
        "rootfs_type": "str",
        "rootless": "bool",
        "rx_rate_limiter_max_rate": "int",
        "seccompsandbox": "str",
        "sev_snp_guest": "bool",
        "shared_fs": "str",
        "tx_rate_limiter_max_rate": "int",
        "use_legacy_serial": "bool",
        "valid_ctlpaths": "list",
        "valid_entropy_sources": "list",
        "valid_file_mem_backends": "list",
        "valid_hypervisor_paths": "list",
        "valid_jailer_paths": "list",
        "valid_vhost_user_store_paths": "list",
        "valid_virtio_fs_daemon_paths": "list",
        "vhost_user_reconnect_timeout_sec": "int",
        "vhost_user_store_path": "str",
        "virtio_fs_cache": "str",
        "virtio_fs_cache_size": "int",
        "virtio_fs_daemon": "str",
        "virtio_fs_extra_args": "list",
        "virtio_fs_queue_size": "int",
    },
    "runtime": {
        "create_container_timeout": "int",
        "dan_conf": "str",
        "disable_guest_empty_dir": "bool",
        "disable_guest_seccomp": "bool",
        "disable_new_netns": "bool",
        "emptydir_mode": "str",
        "enable_debug": "bool",
        "enable_pprof": "bool",
        "enable_tracing": "bool",
        "enable_vcpus_pinning": "bool",
        "experimental": "list",
        "guest_selinux_label": "str",
        "internetworking_model": "str",
        "jaeger_endpoint": "str",
        "jaeger_password": "str",
        "jaeger_user": "str",
        "kubelet_root_dir": "str",
        "pod_resource_api_sock": "str",
        "sandbox_bind_mounts": "list",
        "sandbox_cgroup_only": "bool",
        "static_sandbox_resource_mgmt": "bool",
        "vfio_mode": "str",
    },
    "agent.kata": {
        "cdh_api_timeout": "int",
        "debug_console_enabled": "bool",
        "dial_timeout": "int",
        "enable_debug": "bool",
        "enable_tracing": "bool",
        "kernel_modules": "list",
    },
    "factory": {
        "enable_template": "bool",
        "template_path": "str",
        "vm_cache_endpoint": "str",
        "vm_cache_number": "int",
    },
    "image": {
        "provision": "str",
        "service_offload": "bool",
    },
}

# Keys that do not exist upstream but show up in field notes, with the explanation to give.
RETIRED_KEYS = {
    "enable_cpu_memory_hotplug": (
        "exists only in an openEuler 1.x fork of Kata; upstream Kata has no such key and ignores it. "
        "Use runtime.static_sandbox_resource_mgmt = true to size the VM once at boot without CPU/memory "
        "hot-plug (KC src/runtime/pkg/katautils/config.go: StaticSandboxResourceMgmt)"
    ),
}

# Keys that only one hypervisor honours; set elsewhere they are silent no-ops.
HYPERVISOR_ONLY = {
    "enable_virtio_mem": ("qemu",),  # KC docs/how-to/how-to-use-virtio-mem-with-kata.md: QEMU only
}
