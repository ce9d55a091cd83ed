package testenv

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// ChartMemorySettings are the environment and flags the chart's
// Deployment gives the manager for the Go runtime's memory, from its
// default values: GOGC (manager.goGC), and GOMEMLIMIT (manager.goMemLimit,
// or goMemLimit when given) or else --memory-limit from the container's
// resources.limits.memory (or containerLimit when given).
func ChartMemorySettings(goMemLimit, containerLimit string) (env, args []string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, "charts", "kubist", "values.yaml"))
	if err != nil {
		return nil, nil, err
	}
	var values struct {
		Manager struct {
			GoMemLimit string `json:"goMemLimit"`
			GoGC       any    `json:"goGC"`
		} `json:"manager"`
		Resources struct {
			Limits struct {
				Memory string `json:"memory"`
			} `json:"limits"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, nil, fmt.Errorf("the chart's values: %w", err)
	}
	if values.Manager.GoGC != nil && fmt.Sprint(values.Manager.GoGC) != "" {
		env = append(env, fmt.Sprintf("GOGC=%v", values.Manager.GoGC))
	}
	if limit := cmp.Or(goMemLimit, values.Manager.GoMemLimit); limit != "" {
		return append(env, "GOMEMLIMIT="+limit), nil, nil
	}
	if memory := cmp.Or(containerLimit, values.Resources.Limits.Memory); memory != "" {
		args = append(args, "--memory-limit="+memory)
	}
	return env, args, nil
}
