// Command argocd-health prints ArgoCD's health verdict for Kubernetes objects, computed by ArgoCD's
// own code: argocd-cm is parsed by its settings manager (the resource.customizations.health.* keys),
// and each object is judged by gitops-engine's health.GetResourceHealth with those Lua overrides, the
// path the application controller takes.
//
// Usage: argocd-health <argocd-cm.yaml> < objects.json
// stdin is a JSON array of objects; stdout is a JSON array of {"status", "message"} in the same order.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/argoproj/gitops-engine/pkg/health"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/common"
	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: argocd-health <argocd-cm.yaml> < objects.json")
	}
	overrides, err := loadOverrides(os.Args[1])
	if err != nil {
		return err
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	var objects []map[string]any
	if err := json.Unmarshal(input, &objects); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	verdicts := make([]verdict, 0, len(objects))
	for _, object := range objects {
		status, err := health.GetResourceHealth(&unstructured.Unstructured{Object: object}, lua.ResourceHealthOverrides(overrides))
		if err != nil {
			return fmt.Errorf("%v/%v: %w", object["kind"], object["metadata"], err)
		}
		if status == nil {
			// No health check applies: ArgoCD shows such a resource as healthy by omission.
			verdicts = append(verdicts, verdict{})
			continue
		}
		verdicts = append(verdicts, verdict{Status: string(status.Status), Message: status.Message})
	}
	return json.NewEncoder(os.Stdout).Encode(verdicts)
}

// loadOverrides reads the argocd-cm manifest and lets ArgoCD's settings manager parse it, so the
// key format (resource.customizations.health.<group>_<kind>) is checked by ArgoCD, not by us.
func loadOverrides(path string) (map[string]appv1.ResourceOverride, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cm.Name != common.ArgoCDConfigMapName {
		return nil, fmt.Errorf("%s: a patch of %s, got %q", path, common.ArgoCDConfigMapName, cm.Name)
	}
	cm.Namespace = "argocd"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: common.ArgoCDSecretName, Namespace: "argocd",
		Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"},
	}}
	client := fake.NewClientset(&cm, secret)
	manager := settings.NewSettingsManager(context.Background(), client, "argocd")
	overrides, err := manager.GetResourceOverrides()
	if err != nil {
		return nil, err
	}
	return overrides, nil
}
