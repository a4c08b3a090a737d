// Command chartcheck checks the parts of the taskiq-fleet chart that no
// Kubernetes schema covers, with the libraries Prometheus and the Prometheus
// Operator use themselves:
//
//	chartcheck metrics     reads a JSON array of PromQL expressions on stdin and
//	                       prints, for each, the metrics it selects with the label
//	                       names each selector matches on, and the label names it
//	                       groups or matches by (or the parse error), as a JSON array
//	chartcheck monitoring  reads rendered YAML documents on stdin and decodes each
//	                       ServiceMonitor, PodMonitor and PrometheusRule strictly
//	                       into the operator's own types (unknown fields refused);
//	                       a PrometheusRule's groups must also pass Prometheus'
//	                       rule file checks. Exit 1 lists every problem.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

type selectorReport struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
}

type exprReport struct {
	Expr      string           `json:"expr"`
	Error     string           `json:"error,omitempty"`
	Selectors []selectorReport `json:"selectors"`
	Grouping  []string         `json:"grouping"`
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for key := range set {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

// inspectExpr lists the vector selectors of expr and every label name used in
// by/without, on/ignoring and group_left/group_right clauses.
func inspectExpr(expr string) (exprReport, error) {
	report := exprReport{Expr: expr, Selectors: []selectorReport{}, Grouping: []string{}}
	parsed, err := parser.ParseExpr(expr)
	if err != nil {
		return report, err
	}
	grouping := map[string]bool{}
	var unnamed error
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				unnamed = fmt.Errorf("selector %s names no metric", n.String())
				return nil
			}
			labels := map[string]bool{}
			for _, matcher := range n.LabelMatchers {
				if matcher.Name != model.MetricNameLabel {
					labels[matcher.Name] = true
				}
			}
			report.Selectors = append(report.Selectors, selectorReport{Metric: n.Name, Labels: sortedKeys(labels)})
		case *parser.AggregateExpr:
			for _, label := range n.Grouping {
				grouping[label] = true
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				for _, label := range n.VectorMatching.MatchingLabels {
					grouping[label] = true
				}
				for _, label := range n.VectorMatching.Include {
					grouping[label] = true
				}
			}
		}
		return nil
	})
	if unnamed != nil {
		return report, unnamed
	}
	report.Grouping = sortedKeys(grouping)
	return report, nil
}

func runMetrics(in io.Reader, out io.Writer) error {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		return fmt.Errorf("stdin must be a JSON array of strings: %w", err)
	}
	reports := make([]exprReport, 0, len(exprs))
	for _, expr := range exprs {
		report, err := inspectExpr(expr)
		if err != nil {
			report.Error = err.Error()
		}
		reports = append(reports, report)
	}
	encoder := json.NewEncoder(out)
	encoder.SetIndent("", "  ")
	return encoder.Encode(reports)
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func checkRuleGroups(rule *monitoringv1.PrometheusRule) []error {
	// Prometheus' own rule file parser, as the operator's admission webhook uses it.
	content, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		return []error{err}
	}
	_, errs := rulefmt.Parse(content, false, model.UTF8Validation)
	return errs
}

func checkDocument(doc []byte) (string, []error) {
	var meta typeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return "?", []error{err}
	}
	name := fmt.Sprintf("%s/%s", meta.Kind, meta.Metadata.Name)
	if meta.APIVersion != monitoringv1.SchemeGroupVersion.String() {
		return name, nil
	}
	var target any
	switch meta.Kind {
	case monitoringv1.ServiceMonitorsKind:
		target = &monitoringv1.ServiceMonitor{}
	case monitoringv1.PodMonitorsKind:
		target = &monitoringv1.PodMonitor{}
	case monitoringv1.PrometheusRuleKind:
		target = &monitoringv1.PrometheusRule{}
	default:
		return name, []error{fmt.Errorf("kind %s is not checked by chartcheck", meta.Kind)}
	}
	if err := yaml.UnmarshalStrict(doc, target); err != nil {
		return name, []error{err}
	}
	if rule, ok := target.(*monitoringv1.PrometheusRule); ok {
		return name, checkRuleGroups(rule)
	}
	return name, nil
}

func runMonitoring(in io.Reader, out io.Writer) error {
	decoder := yamlv3.NewDecoder(in)
	failed := false
	checked := 0
	for {
		var node yamlv3.Node
		err := decoder.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("stdin is not YAML: %w", err)
		}
		var buffer bytes.Buffer
		if err := yamlv3.NewEncoder(&buffer).Encode(&node); err != nil {
			return err
		}
		name, errs := checkDocument(buffer.Bytes())
		for _, err := range errs {
			failed = true
			fmt.Fprintf(out, "%s: %v\n", name, err)
		}
		checked++
	}
	if failed {
		return errors.New("monitoring objects failed the check")
	}
	fmt.Fprintf(out, "%d documents checked\n", checked)
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: chartcheck metrics|monitoring < input")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "metrics":
		err = runMetrics(os.Stdin, os.Stdout)
	case "monitoring":
		err = runMonitoring(os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
