"""Sidelight's e2e test rig: a local Kubernetes control plane and a fake kubelet.

The control plane (`cluster`) is etcd, kube-apiserver and
kube-controller-manager started as local processes from binaries built by
`e2e/build-binaries`; there is no kubelet and no scheduler. The fake kubelet
(`kubelet`) runs one container of a pod as a local process with the
environment and volumes that the pod spec gives it.
"""
