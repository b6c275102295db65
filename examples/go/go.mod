module stoffelvm-example

go 1.18
