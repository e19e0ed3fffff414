# Fixture root image base-a: busybox on scratch
# Name: registry.test:5000/fx-base-a
FROM scratch
COPY shared/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo "base-a=yes" >> /etc/fixture-stamps
