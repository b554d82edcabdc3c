// Shapes behind a virtual interface plus small templates (extraction tests).
#include <memory>
#include <vector>

namespace shapes {

class Shape {
 public:
  virtual ~Shape() = default;
  virtual double area() const = 0;
  virtual double perimeter() const = 0;
};

class Rect : public Shape {
 public:
  Rect(double w, double h) : w_(w), h_(h) {}
  double area() const override { return w_ * h_; }
  double perimeter() const override { return 2 * (w_ + h_); }

 private:
  double w_, h_;
};

class Circle : public Shape {
 public:
  explicit Circle(double r) : r_(r) {}
  double area() const override { return kPi * r_ * r_; }
  double perimeter() const override { return 2 * kPi * r_; }

 private:
  static constexpr double kPi = 3.14159265358979;
  double r_;
};

template <typename F>
double total(const std::vector<std::unique_ptr<Shape>> &all, F measure) {
  double sum = 0;
  for (const auto &s : all) sum += measure(*s);
  return sum;
}

}  // namespace shapes

double total_area(int n) {
  std::vector<std::unique_ptr<shapes::Shape>> all;
  for (int i = 0; i < n; ++i) {
    if (i % 2) all.push_back(std::make_unique<shapes::Rect>(i, i + 1));
    else all.push_back(std::make_unique<shapes::Circle>(i));
  }
  return shapes::total(all, [](const shapes::Shape &s) { return s.area(); }) +
         shapes::total(all, [](const shapes::Shape &s) { return s.perimeter(); });
}
