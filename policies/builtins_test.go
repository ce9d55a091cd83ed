package policies

import (
	"math"
	"testing"
)

func TestWelchTTest(t *testing.T) {
	tests := map[string]struct {
		a, b      Sample
		t, df, p  float64
		tolerance float64
	}{
		// Reference values from numerical integration of Student's t density.
		"unequal variances":  {a: Sample{10, 2, 30}, b: Sample{12, 3, 25}, t: -2.847474, df: 40.475086, p: 0.006891, tolerance: 1e-5},
		"identical samples":  {a: Sample{5, 1, 10}, b: Sample{5, 1, 10}, t: 0, df: 18, p: 1, tolerance: 1e-9},
		"no variance, equal": {a: Sample{3, 0, 5}, b: Sample{3, 0, 5}, t: 0, df: 8, p: 1, tolerance: 0},
		"no variance, apart": {a: Sample{4, 0, 5}, b: Sample{3, 0, 5}, t: math.MaxFloat64, df: 8, p: 0, tolerance: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := WelchTTest(tc.a, tc.b)
			if math.Abs(r.T-tc.t) > tc.tolerance || math.Abs(r.DF-tc.df) > tc.tolerance*10 || math.Abs(r.P-tc.p) > tc.tolerance {
				t.Fatalf("WelchTTest = %+v, want t=%v df=%v p=%v", r, tc.t, tc.df, tc.p)
			}
		})
	}
}
