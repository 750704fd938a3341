"""kata_sizing through ansible-playbook: seed 001's Guaranteed pod (expected values from seed 001_2857e264df0a5e5d.txt)."""


def test_kata_sizing_check_mode_objects_and_files(playbook, tmp_path):
    w = tmp_path / "w.yaml"
    w.write_text("kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n"
                 "      - {name: app}\n")
    task = """
    - name: sizing
      katafleet.kata.kata_sizing:
        workloads:
          - kind: Pod
            metadata: {name: guaranteed}
            spec:
              containers:
                - {name: uname, resources: {requests: {memory: 1000Mi, cpu: 1000m}, limits: {memory: 1000Mi, cpu: 1000m}}}
          - %s
        runtimeclass: {kind: RuntimeClass, handler: kata, overhead: {podFixed: {memory: 2000Mi, cpu: 1000m}}}
        settings: {default_vcpus: 1}
        host_cpus: 48
        host_memory: 192Gi
    - name: bad quantity
      katafleet.kata.kata_sizing:
        workloads: [{kind: Pod, metadata: {name: x}, spec: {containers: [{name: c, resources: {limits: {cpu: two}}}]}}]
      ignore_errors: true
    """ % w
    rc, res, dummy = playbook(task, check=True)
    assert not res[0]["changed"]
    g, web = res[0]["pods"]
    assert g["name"] == "Pod/guaranteed" and g["qos"] == "Guaranteed"
    assert g["vm"]["vcpus"] == 2 and g["vm"]["memory_mib"] == 3072
    assert g["requests"] == {"cpu_m": 2000, "memory_mib": 3000} and g["pod_cgroup"] == {"cpu_m": 2000, "memory_mib": 3000}
    assert web["name"] == "Deployment/web" and web["qos"] == "BestEffort"
    assert [w["code"] for w in web["warnings"]] == ["NO_LIMITS"]
    assert res[1]["failed"] and "Pod/x, container c (containers), field resources.limits.cpu" in res[1]["msg"]
