package contacts_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/callpop/callpop/contacts"
)

func ExampleNormalize() {
	for _, phone := range []string{"79101234567", "89101234567", "+7 (910) 123-45-67", "9101234567", "101"} {
		fmt.Println(contacts.Normalize(phone))
	}
	// Output:
	// 79101234567
	// 79101234567
	// 79101234567
	// 79101234567
	// 101
}

func ExampleLoad() {
	d, err := contacts.Load(strings.NewReader(`phone,name,responsible
+7 (910) 123-45-67,"Рога и Копыта, ООО",andy
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, ok, _ := d.Lookup(context.Background(), "89101234567")
	fmt.Println(c.Name, c.Responsible, ok)
	// Output:
	// Рога и Копыта, ООО andy true
}
